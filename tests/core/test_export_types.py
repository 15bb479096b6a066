"""Every GGUF type on a tiny Llama: BF16 written directly (exact), K-quants through llama.cpp's
quantizer (loads, answers, agreement reported); and the NF4 round trip used before merging a
4-bit-trained adapter."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytest.importorskip("llama_cpp")

_families = importlib.util.spec_from_file_location(
    "families", Path(__file__).with_name("test_export_families.py")
)
families = importlib.util.module_from_spec(_families)
_families.loader.exec_module(families)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = families.tiny_tokenizer(folder, families.REGEX["llama"])
    cfg, cls = families.family_config("llama", len(tok))
    cfg.hidden_size, cfg.intermediate_size = 256, 512  # rows of 256: real K-quant blocks, no fallback
    cfg.architectures = [cls.__name__]
    torch.manual_seed(0)
    model = cls(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    model = model.to(torch.bfloat16).float()  # exactly representable in BF16 and F16
    return folder, model, tok


def test_bf16_is_exact(tiny_llama, tmp_path):
    from tunesmith.core.export.gguf_writer import write_gguf
    from tunesmith.core.export.verify import verify_gguf

    folder, model, tok = tiny_llama
    path = write_gguf(model.state_dict(), model.config, folder, tmp_path / "m-bf16.gguf", "bf16")
    check = verify_gguf(path, model, tok, "bf16")
    print(f"\nbf16: {check.summary()}")
    assert check.passed and check.exact_required


@pytest.mark.parametrize("quant", ["q4_k_m", "q5_k_m", "q6_k"])
def test_k_quants_load_and_agree(tiny_llama, tmp_path, quant):
    import gguf

    from tunesmith.core.export.gguf_writer import write_gguf
    from tunesmith.core.export.quantize import quantize_gguf
    from tunesmith.core.export.verify import verify_gguf

    folder, model, tok = tiny_llama
    f16 = write_gguf(model.state_dict(), model.config, folder, tmp_path / "m-f16.gguf", "f16")
    out = quantize_gguf(f16, tmp_path / f"m-{quant}.gguf", quant)
    types = {t.tensor_type.name for t in gguf.GGUFReader(str(out)).tensors}
    assert any(name.endswith("_K") for name in types), types
    check = verify_gguf(out, model, tok, quant)
    print(f"\n{quant}: {check.summary()}")
    # A random tiny model has flat logits, so 4-bit noise flips many argmaxes (real models agree far
    # more: see the SmolLM2 round trip); a wrong tensor layout would agree on almost none.
    assert check.template_match and check.token_ids_match and not check.exact_required
    assert check.argmax_agreement >= 0.25


def test_nf4_round_trip_reproduces_bitsandbytes_dequantized_weights():
    import bitsandbytes.functional as bnbf

    from tunesmith.core.export.merged import nf4_round_trip

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32))
    original = model[0].weight.detach().clone()
    nf4_round_trip(model)
    q, state = bnbf.quantize_4bit(
        original.to(torch.bfloat16), blocksize=64, compress_statistics=True, quant_type="nf4"
    )
    expected = bnbf.dequantize_4bit(q, state).float()
    assert torch.equal(model[0].weight, expected)
    assert not torch.equal(model[0].weight, original)  # it really changed (4-bit grid)
