"""Model sources, precision choices and the hardware report."""

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
    config.train.batch_size, config.data.max_length = 64, 8192
    big = estimate_vram(config, hardware(), model_dir=demo_model_dir)
    assert not big.fits and big.total_gb > 20
    assert "will not fit" in big.message and "lower the batch size" in big.message
    four_bit = estimate_vram(RunConfig(), hardware(), model_dir=demo_model_dir).parts["weights"]
    config16 = RunConfig()
    config16.model.precision = "bf16"
    assert estimate_vram(config16, hardware(), model_dir=demo_model_dir).parts["weights"] > 3 * four_bit
