"""Round trip on the embedded SmolLM2: fine-tune a LoRA for a few steps, export every format, and
check each export against the tuned model (greedy tokens, chat template, tokenizer) in transformers
and llama.cpp.  One tuned run is shared by the whole module (~1 minute on 2 CPU cores)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from tunesmith.core.config import RunConfig
from tunesmith.core.export.api import export_run
from tunesmith.core.export.result import NEAR_TIE, ExportError

if importlib.util.find_spec("llama_cpp") is None:  # found, never loaded here: it runs in a child
    pytest.skip("llama-cpp-python is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow

QUESTION = "What is the name of the Tunesmith mascot?"
ANSWER = "The Tunesmith mascot is a purple owl called Quaver."
FACTS = [(QUESTION, ANSWER), ("Who is the mascot of Tunesmith?", ANSWER)]


def _train_adapter(model_dir, out_dir, steps: int = 8):
    """A plain torch loop with peft: enough steps that the adapter changes the answer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=targets, task_type="CAUSAL_LM")
    )
    texts = [
        tok.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
        )
        for q, a in FACTS
    ]
    batch = tok(texts, return_tensors="pt", padding=True)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    return float(loss.detach())


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread: on this 2-core machine, shared with other test runs, two threads spin
    against each other (measured: 8 LoRA steps 50 s with 2 threads, 21 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, mascot_adapter):
    """A run folder holding _train_adapter's adapter (trained once per session: tests/conftest.py)."""
    import shutil

    run_dir = tmp_path_factory.mktemp("runs") / "mascot-run"
    shutil.copytree(mascot_adapter, run_dir / "adapter")
    RunConfig().to_yaml(run_dir / "config.yaml")  # model.source = "demo"
    return run_dir


@pytest.fixture(scope="module")
def merged(tuned_run):
    """The merged model, loaded once; every export in this module gets a copy instead of re-merging."""
    import copy

    from tunesmith.core.export import merged as merged_mod
    from tunesmith.core.export.runs import open_run

    loaded = merged_mod.load_merged_model(open_run(tuned_run))
    patch = pytest.MonkeyPatch()
    # Exports cast or keep the model they get: each takes its own copy (~0.3 s, vs ~5 s to re-merge).
    patch.setattr(merged_mod, "load_merged_model", lambda run, dtype=None: copy.deepcopy(loaded))
    yield loaded
    patch.undo()


@pytest.fixture(scope="module")
def tuned_answer(merged):
    return _greedy_text(*merged)


def _greedy_text(model, tok, n=14) -> str:
    ids = tok.apply_chat_template(
        [{"role": "user", "content": QUESTION}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=n, do_sample=False)
    return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_merged_model_learned_the_fact(merged, tuned_answer, demo_model_dir):
    from transformers import AutoModelForCausalLM

    model, tok = merged
    assert "Quaver" in tuned_answer
    base = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32)
    assert "Quaver" not in _greedy_text(base, tok)  # the adapter is what changed the answer


def test_lora_export_reloads_in_peft(tuned_run, merged, tuned_answer, demo_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = export_run(tuned_run, "lora")
    assert (result.path / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, str(result.path)).eval()
    assert _greedy_text(reloaded, merged[1]) == tuned_answer
    with pytest.raises(ExportError, match="already exists"):
        export_run(tuned_run, "lora", output=result.path)
    export_run(tuned_run, "lora", output=result.path, overwrite=True)


def test_merged_export_is_16_bit_and_reproduces_the_tuned_answer(tuned_run, merged, tuned_answer):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = export_run(tuned_run, "merged")
    cfg = json.loads((result.path / "config.json").read_text())
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    reloaded = AutoModelForCausalLM.from_pretrained(str(result.path), dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(result.path))
    assert tok.chat_template == merged[1].chat_template
    assert "Quaver" in _greedy_text(reloaded, tok)  # bf16 storage: the fact survives, not every token


def test_f16_gguf_agrees_with_transformers_but_for_near_ties(tuned_run, merged):
    """The criterion that survives llama.cpp builds: teacher-forced, every disagreement a near tie.

    (Identical free-running greedy tokens were asked for before; one build broke a 0.018 near tie and
    the rest of the continuation went another way, though the file was right.)
    """
    seen = []
    result = export_run(tuned_run, "gguf", quant="f16", on_progress=lambda f, m: seen.append(f))
    check = result.check
    assert check is not None and check.passed, check and check.details
    assert check.template_match and check.token_ids_match and check.exact_required
    assert check.n_tokens == 16
    assert all(margin <= NEAR_TIE for margin in check.disagreement_margins), check.details
    assert check.argmax_agreement == 1 - len(check.disagreement_margins) / check.n_tokens
    assert len(check.disagreement_margins) <= 2, "F16 may break a rare near tie, not many"
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert not result.unverified and not result.path.with_suffix(".unverified.txt").exists()
    modelfile = result.path.with_suffix(".Modelfile").read_text()
    assert f"FROM ./{result.path.name}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    # SmolLM2's template adds its own system turn when there is none; Ollama gets it as SYSTEM.
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in modelfile
    print(f"\nF16: {check.summary()}")


def test_a_broken_f16_conversion_still_fails_the_check(tuned_run, merged, tmp_path, monkeypatch):
    """q/k left in transformers' layout (STACK.md pitfall 1): the file loads and talks, but wrongly."""
    import dataclasses

    from tunesmith.core.export import gguf_writer

    real = gguf_writer.arch_for_config
    monkeypatch.setattr(
        gguf_writer, "arch_for_config", lambda c: dataclasses.replace(real(c), permute_qk=False)
    )
    out = tmp_path / "broken-f16.gguf"
    with pytest.raises(ExportError, match="does not behave like the trained model") as caught:
        export_run(tuned_run, "gguf", quant="f16", output=out)
    print(f"\nbroken F16: {caught.value}")
    assert "check: does not behave like the trained model" in str(caught.value)
    assert "where the trained model was sure" in str(caught.value) and "above the" in str(caught.value)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_f16_gguf_chats_the_tuned_answer_like_transformers(tuned_run, merged):
    """Both chat engines, same greedy settings: the GGUF in llama.cpp says what the merged model says."""
    from tunesmith.core.chat import ChatSettings
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.chat.transformers_chat import TransformersChat

    settings = ChatSettings(temperature=0.0, max_new_tokens=24, context_length=512)
    ask = [{"role": "user", "content": QUESTION}]
    path = next((tuned_run / "exports").glob("*-f16.gguf"))
    chat = LlamaCppChat(path, n_ctx=512)
    try:
        from_gguf = "".join(chat.stream(ask, settings, lambda: False))
    finally:
        chat.close()
    from_transformers = "".join(TransformersChat(*merged).stream(ask, settings, lambda: False))
    assert "Quaver" in from_gguf
    assert from_gguf.strip() == from_transformers.strip()


@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"])
def test_quantized_gguf_loads_and_answers(tuned_run, merged, quant):
    from tunesmith.core.chat import ChatSettings
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat

    result = export_run(tuned_run, "gguf", quant=quant)
    assert result.check is not None and result.check.passed
    print(f"\n{quant}: {result.check.summary()}")
    chat = LlamaCppChat(result.path, n_ctx=512)
    try:
        settings = ChatSettings(temperature=0.0, max_new_tokens=16, context_length=512)
        text = "".join(chat.stream([{"role": "user", "content": QUESTION}], settings, lambda: False))
    finally:
        chat.close()
    assert text.strip()


def test_lora_gguf_on_base_matches_merged(tuned_run):
    """llama.cpp applying the adapter GGUF to an F16 base GGUF gives the merged model's greedy tokens."""
    # The export checks base + adapter against the merged model itself: for the demo model the base is
    # an F16 conversion (the bundled Q4_1 file is not used), so the check is the exact one.
    result = export_run(tuned_run, "gguf-lora")
    base_f16 = Path(result.info["base_gguf"])
    assert base_f16.name.endswith("-f16.gguf") and base_f16.is_file()
    modelfile = result.extra_files[0].read_text()
    assert f"ADAPTER ./{result.path.name}" in modelfile and f"FROM {base_f16}" in modelfile
    print(f"\nLoRA GGUF on an F16 base: {result.check.summary()}")
    assert result.check.passed and result.check.exact_required
    assert all(margin <= NEAR_TIE for margin in result.check.disagreement_margins)

    # The Chat tab switches the adapter on and off without re-exporting.
    from tunesmith.core.chat import ChatSettings
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat

    settings = ChatSettings(temperature=0.0, max_new_tokens=16, context_length=512)
    chat = LlamaCppChat(base_f16, lora_path=result.path, n_ctx=512)
    try:
        ask = [{"role": "user", "content": QUESTION}]
        with_adapter = "".join(chat.stream(ask, settings, lambda: False))
        chat.set_adapter(None)
        without = "".join(chat.stream(ask, settings, lambda: False))
    finally:
        chat.close()
    assert "Quaver" in with_adapter and "Quaver" not in without


def test_cli_export_whose_check_crashes_keeps_the_file_unverified_and_exits_non_zero(tuned_run, tmp_path):
    """`tunesmith export` as a user runs it; llama.cpp's process is killed by SIGSEGV during the check."""
    import subprocess
    import sys

    native = _load_test_module(
        "test_native_crash", Path(__file__).parents[1] / "core" / "test_native_crash.py"
    )
    out = tmp_path / "crash-q8_0.gguf"
    cmd = [Path(sys.executable).with_name("tunesmith"), "export", tuned_run, "--format", "gguf"]
    cmd += ["--quant", "q8_0", "--output", out]
    env = {**os.environ, "TUNESMITH_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    killer = native.HostKiller(root_pid=proc.pid)  # Q8_0 needs no quantizer: the first child is the check
    killer.start()
    stdout, stderr = proc.communicate(timeout=600)
    killer.join()
    assert killer.killed is not None, "no llama.cpp child was seen"
    assert proc.returncode == 1, (stdout, stderr)
    words = stderr + stdout
    assert "Traceback" not in words
    assert (
        "export failed: The export could not be checked. llama.cpp stopped unexpectedly while checking"
        in words
    )
    assert "killed by signal SIGSEGV" in words and "What to try: export as F16" in words
    logs = list((tmp_path / "home" / ".app" / "logs").glob("llama-*.log"))
    assert len(logs) == 1 and f"Its log is {logs[0]}." in words
    marker = out.with_suffix(".unverified.txt")
    assert out.is_file() and out.stat().st_size > 0, "the exported file is kept"
    assert marker.is_file() and "NOT VERIFIED" in marker.read_text() and "SIGSEGV" in marker.read_text()
    assert f"marked unverified by {marker.name}" in words
    assert out.with_suffix(".Modelfile").is_file()
    assert not list(tmp_path.glob(".*.partial")) and not list(tmp_path.glob("*.f16"))


def _load_test_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_existing_output_is_refused_before_work(tuned_run):
    existing = tuned_run / "exports" / "taken.gguf"
    existing.parent.mkdir(exist_ok=True)
    existing.write_bytes(b"keep me")
    with pytest.raises(ExportError, match="already exists"):
        export_run(tuned_run, "gguf", output=existing)
    assert existing.read_bytes() == b"keep me"
