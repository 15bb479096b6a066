"""Export from the app while llama.cpp's process dies (a real SIGSEGV) during the GGUF check: the
banner says so in words, the file is kept and marked unverified, and the app goes on working.

The run is the embedded model with an untrained LoRA adapter (merges to the base model): what is
tested is the crash path, not the training.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("llama_cpp") is None:  # found, never loaded here: it runs in a child
    pytest.skip(
        "llama-cpp-python is an optional extra (pip install tunesmith[chat])", allow_module_level=True
    )

pytestmark = pytest.mark.slow

TIMEOUT = 300_000

_spec = importlib.util.spec_from_file_location(
    "test_native_crash", Path(__file__).parents[1] / "core" / "test_native_crash.py"
)
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)


@pytest.fixture
def untrained_run(tmp_path, demo_model_dir) -> Path:
    """A run folder whose adapter was saved untrained (LoRA B = 0): seconds, no training.

    Made before the window opens (the test asks for it first), while no background probe imports
    transformers at the same time.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunesmith.core.config import RunConfig

    run_dir = tmp_path / "run"
    (run_dir / "adapter").mkdir(parents=True)
    RunConfig().to_yaml(run_dir / "config.yaml")  # model.source = "demo"
    model = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(str(run_dir / "adapter"))
    return run_dir


def test_a_check_killed_mid_export_is_a_banner_in_words_and_the_app_stays_usable(
    untrained_run, window, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    controller = window.controller
    controller.training.last_run_dir = str(untrained_run)
    errors: list[str] = []
    controller.sig_error.connect(lambda message, hint, details: errors.append(message))
    out = tmp_path / "app-q8_0.gguf"
    killer = native.HostKiller()  # Q8_0 needs no quantizer: the first llama.cpp child is the check
    killer.start()
    controller.export("gguf", "q8_0", str(out))
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    killer.join()
    assert killer.killed is not None

    shown = window.banner.text()
    assert "Export failed." in shown and "llama.cpp stopped unexpectedly while checking" in shown
    assert "SIGSEGV" in shown and "Its log is" in shown and "What to try: export as F16" in shown
    assert f"marked unverified by {out.with_suffix('.unverified.txt').name}" in shown
    assert "Traceback" not in shown
    assert out.is_file() and out.with_suffix(".unverified.txt").is_file()
    assert not list(tmp_path.glob(".*.partial"))

    # Still usable: the next export runs and finishes.
    with qtbot.waitSignal(controller.sig_export_done, timeout=TIMEOUT) as done:
        controller.export("lora", None, str(tmp_path / "again-lora"))
    assert window.isVisible() and Path(done.args[0].path).is_dir()
