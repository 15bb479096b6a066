"""Bad inputs give clear messages before any heavy work: missing run, half-finished run, unknown
format or type, existing output, unsupported architecture."""

from __future__ import annotations

import json

import pytest

from tunesmith.core.config import RunConfig
from tunesmith.core.export.api import export_run
from tunesmith.core.export.gguf_arch import arch_for_config
from tunesmith.core.export.result import ExportError


def _fake_run(tmp_path, source: str = "demo", with_adapter: bool = True):
    run = tmp_path / "run"
    run.mkdir()
    cfg = RunConfig()
    cfg.model.source = source
    cfg.to_yaml(run / "config.yaml")
    if with_adapter:
        (run / "adapter").mkdir()
        (run / "adapter" / "adapter_config.json").write_text(
            json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8})
        )
    return run


def test_missing_run_dir(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_run(tmp_path / "nope", "gguf")


def test_folder_without_config(tmp_path):
    with pytest.raises(ExportError, match="not a Tunesmith run folder"):
        export_run(tmp_path, "lora")


def test_run_without_adapter(tmp_path):
    with pytest.raises(ExportError, match="did not finish"):
        export_run(_fake_run(tmp_path, with_adapter=False), "merged")


@pytest.mark.parametrize(
    ("fmt", "quant", "message"),
    [
        ("onnx", None, "unknown export format"),
        ("gguf", "q3_k", "unknown GGUF type"),
        ("lora", "q8_0", "applies to GGUF"),
    ],
)
def test_bad_format_or_quant(tmp_path, fmt, quant, message):
    with pytest.raises(ExportError, match=message):
        export_run(_fake_run(tmp_path), fmt, quant=quant)


def test_gguf_output_needs_gguf_suffix(tmp_path):
    with pytest.raises(ExportError, match="must end in .gguf"):
        export_run(_fake_run(tmp_path), "gguf", output=tmp_path / "model.bin")


def test_lora_without_weights(tmp_path):
    with pytest.raises(ExportError, match="no adapter_model.safetensors"):
        export_run(_fake_run(tmp_path), "lora")


def test_unsupported_architecture_is_refused_before_work(tmp_path):
    """A GPT-2 base: refused by name, before the model is loaded or any file is written."""
    from transformers import GPT2Config

    base = tmp_path / "gpt2-base"
    base.mkdir()
    GPT2Config(n_layer=1, n_embd=32, n_head=2, architectures=["GPT2LMHeadModel"]).save_pretrained(base)
    run = _fake_run(tmp_path, source=str(base))
    with pytest.raises(
        ExportError, match=r"does not support this model's architecture \(GPT2LMHeadModel\).*Supported:"
    ):
        export_run(run, "gguf")
    assert not (run / "exports").exists() or not any((run / "exports").iterdir())


def test_arch_table_names_every_family():
    from types import SimpleNamespace

    for name, arch in [
        ("LlamaForCausalLM", "llama"),
        ("MistralForCausalLM", "llama"),
        ("Qwen2ForCausalLM", "qwen2"),
        ("Qwen3ForCausalLM", "qwen3"),
        ("Gemma2ForCausalLM", "gemma2"),
        ("Gemma3ForCausalLM", "gemma3"),
    ]:
        assert arch_for_config(SimpleNamespace(architectures=[name])).name == arch
    with pytest.raises(ExportError, match="Phi3ForCausalLM"):
        arch_for_config(SimpleNamespace(architectures=["Phi3ForCausalLM"]))


def test_trained_precision_comes_from_the_started_event(tmp_path):
    from tunesmith.core.export.runs import open_run

    run = _fake_run(tmp_path)
    assert open_run(run).trained_precision() is None
    lines = [
        '{"event": "started", "precision": "4bit", "device": "cuda"}',
        '{"event": "step", "loss": 1.0}',
        '{"trunc',
    ]
    (run / "metrics.jsonl").write_text("\n".join(lines))
    assert open_run(run).trained_precision() == "4bit"
