"""Model sources, precision choices and the hardware report."""

import dataclasses
import json
import os

import pytest

from tunesmith.core.hardware import HardwareInfo, detect_hardware
from tunesmith.core.models.precision import choose_precision
from tunesmith.core.models.sources import ModelSourceError, resolve_dense_model_dir, resolve_model_source


def hardware(device="cuda", cc=(8, 9), bnb="0.50.2"):
    gpu = device == "cuda"
    return HardwareInfo(
        device,
        "Test GPU" if gpu else None,
        cc if gpu else None,
        24.0 if gpu else 0.0,
        20.0 if gpu else 0.0,
        32.0,
        8,
        "2.13",
        "12.8" if gpu else None,
        "3.9",
        bnb,
        "3.11",
    )


def test_demo_source_is_the_embedded_gguf_converted_once(demo_model_dir):
    source = resolve_model_source("demo")
    assert source.kind == "demo" and source.location.endswith(".gguf")
    assert (demo_model_dir / "model.safetensors").is_file()
    assert (demo_model_dir / "chat_template.jinja").is_file()
    assert resolve_dense_model_dir("demo") == demo_model_dir  # cached: no second conversion


def test_local_folder_and_gguf_file_sources(demo_model_dir):
    assert resolve_model_source(str(demo_model_dir)).kind == "folder"
    assert resolve_model_source(resolve_model_source("demo").location).kind == "gguf"


def test_bad_sources_say_what_to_do(tmp_path):
    with pytest.raises(ModelSourceError, match="no config.json"):
        resolve_model_source(str(tmp_path))
    with pytest.raises(ModelSourceError, match="no such file or folder"):
        resolve_model_source(str(tmp_path / "nothing-here"))


def test_hub_id_offline_fails_fast_with_a_clear_message():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert resolve_model_source("some-org/some-model").kind == "hub"
    with pytest.raises(ModelSourceError, match="not in the local Hugging Face cache and the hub is offline"):
        resolve_dense_model_dir("some-org/some-model")


@pytest.mark.parametrize(
    ("requested", "hw", "expected", "note"),
    [
        ("auto", hardware(), "4bit", None),
        ("auto", hardware("cpu"), "fp32", None),
        ("auto", hardware(cc=(7, 5)), "4bit", None),
        ("auto", hardware(bnb=None), "bf16", None),
        ("4bit", hardware("cpu"), "fp32", "needs a CUDA GPU"),
        ("bf16", hardware(cc=(7, 5)), "fp16", "no bf16 support"),
        ("bf16", hardware(cc=(6, 1)), "fp32", "compute capability 6.1"),
        ("fp16", hardware("cpu"), "fp32", "not supported on the CPU"),
        ("bf16", hardware(), "bf16", None),
    ],
)
def test_precision_falls_back_and_says_why(requested, hw, expected, note):
    choice = choose_precision(requested, hw)
    assert choice.precision == expected
    if note:
        assert any(note in n for n in choice.notes)
    else:
        assert choice.notes == []


def test_hardware_report_on_this_machine():
    hw = detect_hardware()
    import torch

    assert hw.torch_version == torch.__version__
    if not torch.cuda.is_available():
        assert hw.summary().startswith("CPU only")
        assert hw.ram_total_gb > 0 and not hw.supports_4bit


def test_vram_estimate_counts_what_the_kernels_save_on_a_gpu():
    """Llama-3.1-8B QLoRA at 1x8192 (BENCHMARKS.md run 11, H200): stock transformers + peft + bnb
    allocated 19.5 GiB, Tunesmith's engine 6.6 GiB; the estimate follows both (plus the CUDA context),
    and says a 12 GB card fits the run only with the kernels."""
    from tunesmith.core.config import RunConfig
    from tunesmith.core.vram import ModelShape, estimate_for_shape

    llama8b = ModelShape(4096, 14336, 32, 128256, 32, 8, 128, False, "llama")
    config = RunConfig()
    config.train.batch_size, config.data.max_length = 1, 8192
    card = dataclasses.replace(hardware(), vram_total_gb=12.0, vram_free_gb=11.5)  # an RTX 3060 12 GB
    with_kernels = estimate_for_shape(llama8b, "4bit", config, card)
    config.model.patch_kernels = False
    stock = estimate_for_shape(llama8b, "4bit", config, card)
    assert 6.6 <= with_kernels.total_gb <= 8.5 and with_kernels.fits
    assert 16.0 <= stock.total_gb <= 22.0 and not stock.fits
    assert with_kernels.parts["logits"] < 0.3 < 7 < stock.parts["logits"]
    # an unknown family or no GPU: counted as stock
    config.model.patch_kernels = True
    other = ModelShape(4096, 14336, 32, 128256, 32, 8, 128, False, "mamba")
    assert estimate_for_shape(other, "4bit", config, card).total_gb == stock.total_gb
    assert estimate_for_shape(llama8b, "4bit", config, None).total_gb == stock.total_gb


def test_vram_estimate_counts_the_real_model_and_warns_when_it_will_not_fit(demo_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from tunesmith.core.config import RunConfig
    from tunesmith.core.vram import estimate_vram, model_shape

    config_json = json.loads((demo_model_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32)
    assert model_shape(config_json).parameters == sum(p.numel() for p in model.parameters())

    config = RunConfig()
    small = estimate_vram(config, hardware(), model_dir=demo_model_dir)
    assert small.fits and "fits" in small.message
    config.train.batch_size, config.data.max_length = 256, 8192
    big = estimate_vram(config, hardware(), model_dir=demo_model_dir)
    assert not big.fits and big.total_gb > 20
    assert "will not fit" in big.message and "lower the batch size" in big.message
    # bitsandbytes quantizes the model's Linear layers; its (tied) embedding table stays 16-bit
    four_bit = estimate_vram(RunConfig(), hardware(), model_dir=demo_model_dir).parts["weights"]
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    linear -= model.lm_head.weight.numel()  # tied: the embedding table itself
    table = model.get_input_embeddings().weight.numel()
    assert four_bit * 1024**3 == pytest.approx(linear * (0.5 + 0.0625) + table * 2, rel=0.01)
    config16 = RunConfig()
    config16.model.precision = "bf16"
    sixteen = estimate_vram(config16, hardware(), model_dir=demo_model_dir).parts["weights"]
    assert sixteen * 1024**3 == pytest.approx(2 * sum(p.numel() for p in model.parameters()), rel=0.01)


def test_transformers_hub_kernels_are_off_in_tunesmith_processes(tmp_path):
    """transformers 5.25 fetches 'hub kernels' at load time by default (and fails where the `kernels`
    package's metadata is missing, as in the bundle): importing the engine turns that off."""
    import subprocess
    import sys

    code = (
        "import os; os.environ.pop('USE_HUB_KERNELS', None); import tunesmith.core; "
        "from transformers.integrations.hub_kernels import _kernels_enabled; print(_kernels_enabled())"
    )
    # from another folder: in the checkout, our kernels/ folder would answer to the bare name `kernels`
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
