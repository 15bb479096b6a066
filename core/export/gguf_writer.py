"""Write a model's weights, hyper-parameters and tokenizer into one GGUF file with the `gguf` package.

Input is a merged state dict (names as transformers saves them), its config and a tokenizer folder;
output is a GGUF in F32, F16, BF16 or Q8_0 that llama.cpp loads and chats with, needing no other file.
Tensors are converted and written one at a time, so peak memory stays near the model's own size.
Knows the GGUF layout rules (STACK.md pitfalls 1, 5, 8, 9); the per-family differences live in
`gguf_arch.py`, the tokenizer in `gguf_vocab.py`, K-quants in `quantize.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gguf
import numpy as np
import torch

from .gguf_arch import ArchSpec, arch_for_config, llama3_rope_factors, permute_for_llama, write_hparams
from .gguf_vocab import build_vocab
from .result import ExportError, ProgressFn, report

if TYPE_CHECKING:
    from transformers import PretrainedConfig

log = logging.getLogger(__name__)

Q = gguf.GGMLQuantizationType
# What gguf-py writes itself; K-quants are made from F16 by llama.cpp (quantize.py).
DIRECT_TYPES = {
    "f32": (Q.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (Q.F16, gguf.LlamaFileType.MOSTLY_F16),
    "bf16": (Q.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": (Q.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}


F16_MAX = 65504.0


@dataclass
class _Entry:
    name: str
    source: str | None  # state-dict key, or None for a generated tensor
    qtype: gguf.GGMLQuantizationType
    shape: tuple[int, ...]


def write_gguf(
    state: Mapping[str, torch.Tensor],
    config: PretrainedConfig,
    tokenizer_dir: Path,
    out_path: Path,
    out_type: str = "f16",
    source_pre: str | None = None,
    model_name: str = "tunesmith-model",
    on_progress: ProgressFn | None = None,
) -> Path:
    """Write `state` (a full causal-LM state dict) as GGUF to `out_path` and return it."""
    if out_type not in DIRECT_TYPES:
        raise ExportError(f"GGUF type {out_type!r} is not written directly (use one of {list(DIRECT_TYPES)})")
    spec = arch_for_config(config)
    qtype, ftype = DIRECT_TYPES[out_type]
    plan = _plan(state, config, spec, qtype)
    vocab = build_vocab(Path(tokenizer_dir), int(config.vocab_size), spec.default_pre, source_pre)

    w = gguf.GGUFWriter(str(out_path), spec.name)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(model_name)
    write_hparams(w, spec, config)
    w.add_file_type(int(ftype))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab.write(w)
    for e in plan:
        # Declared as raw bytes so every type (F32 .. Q8_0) goes through one path.
        byte_shape = gguf.quant_shape_to_byte_shape(e.shape, e.qtype)
        w.add_tensor_info(e.name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=e.qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    try:
        for i, e in enumerate(plan):
            data = _tensor_data(e, state, config, spec)
            if e.qtype == Q.F16 and np.abs(data).max(initial=0.0) > F16_MAX:
                # F16 would store inf here; BF16 keeps FP32's range.
                raise ExportError(f"{e.name} has values beyond F16's range: export as BF16 (--quant bf16)")
            w.write_tensor_data(gguf.quants.quantize(data, e.qtype).view(np.uint8))
            report(on_progress, (i + 1) / len(plan), f"writing {e.name}")
    finally:
        w.close()
    log.info("wrote %s (%s, %d tensors)", out_path, out_type.upper(), len(plan))
    return Path(out_path)


def _plan(
    state: Mapping[str, torch.Tensor], config: PretrainedConfig, spec: ArchSpec, qtype: Q
) -> list[_Entry]:
    """Names, types and shapes of every tensor, fixed before any data is written."""
    names = gguf.get_tensor_name_map(spec.arch, int(config.num_hidden_layers))
    tied = bool(getattr(config, "tie_word_embeddings", False))
    plan: list[_Entry] = []
    for key, t in state.items():
        if key.endswith("rotary_emb.inv_freq"):
            continue
        if key == "lm_head.weight" and tied:
            continue  # llama.cpp reuses token_embd when there is no output tensor (pitfall 8)
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(
                f"no GGUF name for tensor {key!r} ({spec.name}); this model variant is not supported"
            )
        plan.append(_Entry(name, key, _tensor_type(tuple(t.shape), qtype), tuple(t.shape)))
    factors = llama3_rope_factors(config)
    if factors is not None:
        plan.append(
            _Entry(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", None, Q.F32, factors.shape)
        )
    return plan


def _tensor_type(shape: tuple[int, ...], wanted: Q) -> Q:
    if len(shape) == 1:
        return Q.F32  # norms and biases stay F32 (pitfall 9)
    block, _ = gguf.GGML_QUANT_SIZES[wanted]
    if shape[-1] % block != 0:
        log.info("row of %d not divisible by %d: keeping F16", shape[-1], block)
        return Q.F16
    return wanted


def _tensor_data(
    e: _Entry, state: Mapping[str, torch.Tensor], config: PretrainedConfig, spec: ArchSpec
) -> np.ndarray:
    if e.source is None:
        factors = llama3_rope_factors(config)
        assert factors is not None
        return factors
    data = state[e.source].detach().to(torch.float32).cpu().numpy()
    if spec.permute_qk and e.source.endswith(("q_proj.weight", "q_proj.bias")):
        data = permute_for_llama(data, int(config.num_attention_heads))
    elif spec.permute_qk and e.source.endswith(("k_proj.weight", "k_proj.bias")):
        n_kv = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
        data = permute_for_llama(data, n_kv)
    if spec.norm_shift and e.source.endswith("norm.weight"):
        data = data + spec.norm_shift
    return np.ascontiguousarray(data)
