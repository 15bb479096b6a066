"""Which Hugging Face architectures Tunesmith converts to GGUF, and how each differs.

Knows, per family: the llama.cpp architecture name, whether q/k must be permuted to llama.cpp's
interleaved rope layout, whether norm weights are stored shifted by one (Gemma), the default
pre-tokenizer name, and the hyper-parameter keys llama.cpp reads for it.  Knows nothing about
tokenizers (`gguf_vocab.py`) or about writing files (`gguf_writer.py`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gguf
import numpy as np

from .result import ExportError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchSpec:
    arch: gguf.MODEL_ARCH
    # llama.cpp's llama graph applies rope to interleaved pairs; HF stores q/k for rotate-half
    # (STACK.md pitfall 1, silent).  The NEOX-rope families (qwen, gemma) use HF's layout as is.
    permute_qk: bool
    # Gemma's RMSNorm computes x * (1 + w); llama.cpp computes x * w, so w + 1 is stored.
    norm_shift: float
    default_pre: str
    extra: Callable[[gguf.GGUFWriter, PretrainedConfig], None] | None = None

    @property
    def name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.arch]


def _gemma2_extra(w: gguf.GGUFWriter, cfg: PretrainedConfig) -> None:
    _check_query_scale(cfg)
    if cfg.attn_logit_softcapping:
        w.add_attn_logit_softcapping(float(cfg.attn_logit_softcapping))
    if cfg.final_logit_softcapping:
        w.add_final_logit_softcapping(float(cfg.final_logit_softcapping))
    w.add_sliding_window(int(cfg.sliding_window))


def _gemma3_extra(w: gguf.GGUFWriter, cfg: PretrainedConfig) -> None:
    _check_query_scale(cfg)
    if getattr(cfg, "final_logit_softcapping", None):
        w.add_final_logit_softcapping(float(cfg.final_logit_softcapping))
    if getattr(cfg, "sliding_window", None):
        w.add_sliding_window(int(cfg.sliding_window))
    local = rope_parameters(cfg, "sliding_attention").get("rope_theta")
    if local is None:
        local = getattr(cfg, "rope_local_base_freq", None)
    if local is not None:
        w.add_rope_freq_base_swa(float(local))


def _check_query_scale(cfg: PretrainedConfig) -> None:
    # llama.cpp derives Gemma's attention scale from the head size (or hidden/heads for the 27B
    # models, detected by size); any other query_pre_attn_scalar would be silently wrong.
    scalar = getattr(cfg, "query_pre_attn_scalar", None)
    allowed = {cfg.head_dim, cfg.hidden_size // cfg.num_attention_heads}
    if scalar is not None and int(scalar) not in allowed:
        raise ExportError(
            f"query_pre_attn_scalar={scalar} is not supported by llama.cpp's Gemma graph "
            f"(expected one of {sorted(allowed)})"
        )


ARCHITECTURES: dict[str, ArchSpec] = {
    "LlamaForCausalLM": ArchSpec(gguf.MODEL_ARCH.LLAMA, True, 0.0, "llama-bpe"),
    # llama.cpp runs Mistral (dense) with its llama graph; the sliding window of v0.1 is not used.
    "MistralForCausalLM": ArchSpec(gguf.MODEL_ARCH.LLAMA, True, 0.0, "llama-bpe"),
    "Qwen2ForCausalLM": ArchSpec(gguf.MODEL_ARCH.QWEN2, False, 0.0, "qwen2"),
    "Qwen3ForCausalLM": ArchSpec(gguf.MODEL_ARCH.QWEN3, False, 0.0, "qwen2"),
    "Gemma2ForCausalLM": ArchSpec(gguf.MODEL_ARCH.GEMMA2, False, 1.0, "default", _gemma2_extra),
    "Gemma3ForCausalLM": ArchSpec(gguf.MODEL_ARCH.GEMMA3, False, 1.0, "default", _gemma3_extra),
}


def arch_for_config(cfg: PretrainedConfig) -> ArchSpec:
    """The spec for a transformers config, or ExportError naming what is supported."""
    names = list(getattr(cfg, "architectures", None) or [])
    for name in names:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    supported = ", ".join(sorted(ARCHITECTURES))
    found = ", ".join(names) or f"model_type {getattr(cfg, 'model_type', '?')!r}"
    raise ExportError(
        f"GGUF export does not support this model's architecture ({found}). "
        f"Supported: {supported}. Export the LoRA adapter or the merged folder instead."
    )


def rope_parameters(cfg: PretrainedConfig, layer_type: str = "full_attention") -> dict[str, Any]:
    """Rope settings as a dict; transformers 5 keeps them in `rope_parameters`, per layer type for Gemma 3."""
    params = getattr(cfg, "rope_parameters", None) or {}
    if layer_type in params and isinstance(params[layer_type], dict):
        return dict(params[layer_type])
    if params and all(isinstance(v, dict) for v in params.values()):
        return {}
    merged = dict(params)
    if "rope_theta" not in merged and getattr(cfg, "rope_theta", None) is not None:
        merged["rope_theta"] = cfg.rope_theta
    scaling = getattr(cfg, "rope_scaling", None)
    if scaling and "rope_type" not in merged:
        merged.update(scaling)
    return merged


def head_dim(cfg: PretrainedConfig) -> int:
    return int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)


def write_hparams(w: gguf.GGUFWriter, spec: ArchSpec, cfg: PretrainedConfig) -> None:
    """Every hyper-parameter key llama.cpp needs for this family (STACK.md pitfall 5)."""
    n_head = int(cfg.num_attention_heads)
    w.add_context_length(int(cfg.max_position_embeddings))
    w.add_embedding_length(int(cfg.hidden_size))
    w.add_block_count(int(cfg.num_hidden_layers))
    w.add_feed_forward_length(int(cfg.intermediate_size))
    w.add_head_count(n_head)
    w.add_head_count_kv(int(getattr(cfg, "num_key_value_heads", None) or n_head))
    w.add_key_length(head_dim(cfg))
    w.add_value_length(head_dim(cfg))
    w.add_rope_dimension_count(head_dim(cfg))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_vocab_size(int(cfg.vocab_size))
    rope = rope_parameters(cfg)
    if rope.get("rope_theta") is not None:
        w.add_rope_freq_base(float(rope["rope_theta"]))
    _write_rope_scaling(w, rope)
    if spec.extra is not None:
        spec.extra(w, cfg)


def _write_rope_scaling(w: gguf.GGUFWriter, rope: dict[str, Any]) -> None:
    kind = rope.get("rope_type") or rope.get("type") or "default"
    if kind == "default":
        return
    if kind == "llama3":
        return  # carried by the rope_freqs tensor, see llama3_rope_factors
    if kind == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))
        return
    if kind == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(float(rope["factor"]))
        w.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))
        return
    raise ExportError(f"rope scaling type {kind!r} is not supported by the GGUF exporter")


def llama3_rope_factors(cfg: PretrainedConfig) -> np.ndarray | None:
    """Per-frequency divisors for Llama 3.1+ rope scaling (llama.cpp reads them as `rope_freqs`).

    Follows Meta's published formula: long wavelengths are slowed by `factor`, short ones kept,
    the band between interpolated smoothly.  None when the model does not use llama3 scaling.
    """
    rope = rope_parameters(cfg)
    if (rope.get("rope_type") or rope.get("type")) != "llama3":
        return None
    base, dim = float(rope["rope_theta"]), head_dim(cfg)
    factor = float(rope["factor"])
    low, high = float(rope["low_freq_factor"]), float(rope["high_freq_factor"])
    old_ctx = float(rope["original_max_position_embeddings"])
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for i in range(0, dim, 2):
        wavelen = 2 * math.pi * base ** (i / dim)
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def permute_for_llama(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Rotate-half (HF) rows -> interleaved pairs (llama.cpp) for a q/k weight, bias or LoRA B."""
    # (rows, cols) -> (heads, 2, rows/heads/2, cols) -> swap the two middle axes -> back
    shape = w.shape
    return w.reshape(n_heads, 2, shape[0] // n_heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
