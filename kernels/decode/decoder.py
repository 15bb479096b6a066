"""One decode step of a Llama-style decoder (Llama, Mistral, Qwen2, Qwen3), read out of a loaded model.

`read_decoder(model)` turns a transformers causal LM (bare or inside peft; 4-bit NF4 or dense bases,
LoRA unmerged) into a `Decoder`: plain tensors and `Projs` groups, nothing of transformers kept but the
rotary module (asked once for its cos/sin table, so every rope scaling it knows works).  It reads the
same module attributes kernels.patch reads (projections through `patch.projections.lora_proj_of`) and
returns a reason string instead when the model has something the step does not compute (an unknown
family, Gemma's norms, LoRA dropout while training, attention dropout, a non-linear head, ...).

`Decoder.step` computes logits for one new token per row from a preallocated KV cache, with our kernels:
RMSNorm, q/k/v as one NF4 few-row matmul group + LoRA, q/k RMSNorm (Qwen3), RoPE, the cache write,
attention over the cache (GQA as grouped queries), o, add + RMSNorm, gate/up group, SwiGLU, down, head.
Every shape is fixed by the cache and batch and nothing synchronises with the host, so the caller can
capture it in a CUDA graph.  It does not sample and does not know generation configs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..ops.glu import swiglu
from ..ops.nf4 import NF4Weight, can_dequantize_stacked, dequantize_nf4_stacked
from ..ops.rms_norm import add_rms_norm, rms_norm
from ..ops.rope import rope
from ..patch.families import FAMILIES
from ..patch.projections import lora_proj_of
from .lora_rows import lora_xa
from .nf4_matmul import MAX_ROWS, nf4_matmul
from .nf4_rows import ROWS_MAX, groupable, rows_matmul
from .prologue import qk_rope_to_cache

# Decode batches of at least this many rows dequantize a group's weights (one launch) and multiply with
# one cuBLAS GEMM instead of the NF4 rows kernel, whose fp32 FMAs grow with the rows: on an H100 the
# gate/up group took 66 us at 4 rows and 258 us at 16 with the rows kernel, 135 us at either with the
# dense path (bench/sweep_rows.py; BENCHMARKS.md, issue 15, session 11), so they cross near 8 rows.
DENSE_FROM_ROWS = 9


@dataclass(eq=False)
class Projs:
    """Projections of one input with outputs side by side: y_i = x W_i^T + b_i + s_i (x A_i^T) B_i^T.

    The LoRA factors are read from the live parameters into fixed buffers by `refresh()` (call it before
    each generation: the optimizer changes them in place between rollouts, and a captured CUDA graph
    reads the buffers).  The adapter term runs in the adapters' dtype and is cast to x's dtype before it
    is added, as peft does: A_cat = [A_i] stacked, B_bd = blockdiag(B_i), scale = s_i per output column.
    For a decode batch (at most ROWS_MAX rows) the whole group is two launches: x A_cat^T (lora_rows)
    and one NF4 rows kernel over all its weights, biases (bias_cat, zeros where a weight has none) and
    the adapter term.
    """

    weights: list  # NF4Weight or dense [n_i, K]
    biases: list
    adapters: list  # (A, B, scaling) live parameters, or None
    outs: list[int] = field(init=False)
    a_cat: torch.Tensor | None = field(init=False, default=None)
    b_bd: torch.Tensor | None = field(init=False, default=None)
    scale: torch.Tensor | None = field(init=False, default=None)
    bias_cat: torch.Tensor | None = field(init=False, default=None)
    _grouped: tuple = field(init=False, default=((), False))  # (weight ids, one rows launch takes them)

    def __post_init__(self):
        self.outs = [int(w.shape[0]) for w in self.weights]
        self.adapters = [a if a is not None and a[0].shape[0] > 0 else None for a in self.adapters]

    def grouped(self) -> bool:
        """Whether one rows launch takes all the weights (decided again when a weight is replaced)."""
        ids = tuple(id(w) for w in self.weights)
        if self._grouped[0] != ids:
            w0 = self.weights[0]
            # the rows kernel reads one NF4 code table for the group (bitsandbytes' is the same for all)
            same = groupable(self.weights) and all(torch.equal(w.code, w0.code) for w in self.weights)
            self._grouped = (ids, same)
        return self._grouped[1]

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the live A and B into the buffers (allocated at the first call).  A scaling that is a
        power of two is folded into B (exact: x 2^e commutes with every rounding); others stay a
        per-column multiply after the matmul, as peft applies them.  The biases go side by side into
        bias_cat for the grouped launch."""
        self.grouped()  # decided here, outside any CUDA-graph capture (it may compare code tables)
        if any(b is not None for b in self.biases):
            b0 = next(b for b in self.biases if b is not None)
            if self.bias_cat is None:
                self.bias_cat = torch.zeros(sum(self.outs), dtype=b0.dtype, device=b0.device)
            n0 = 0
            for b, n in zip(self.biases, self.outs, strict=True):
                if b is not None:
                    self.bias_cat[n0 : n0 + n].copy_(b)
                n0 += n
        live = [a for a in self.adapters if a is not None]
        if not live:
            return
        fold = all(math.frexp(a[2])[0] == 0.5 for a in live)
        if self.a_cat is None:
            a0 = live[0][0]
            rank = sum(a[0].shape[0] for a in live)
            self.a_cat = torch.zeros(rank, a0.shape[1], dtype=a0.dtype, device=a0.device)
            self.b_bd = torch.zeros(sum(self.outs), rank, dtype=a0.dtype, device=a0.device)
            if not fold:
                self.scale = torch.zeros(sum(self.outs), dtype=a0.dtype, device=a0.device)
        a_cat, b_bd = self.a_cat, self.b_bd
        assert b_bd is not None  # allocated with a_cat
        r0 = n0 = 0
        for a, n in zip(self.adapters, self.outs, strict=True):
            if a is not None:
                r = a[0].shape[0]
                a_cat[r0 : r0 + r].copy_(a[0])
                if fold:
                    torch.mul(a[1], a[2], out=b_bd[n0 : n0 + n, r0 : r0 + r])
                else:
                    b_bd[n0 : n0 + n, r0 : r0 + r].copy_(a[1])
                    assert self.scale is not None  # allocated by a first refresh that did not fold
                    self.scale[n0 : n0 + n] = a[2]
                r0 += r
            n0 += n

    def key(self) -> tuple:
        """Identity of what this group reads (weights, biases, adapter tensors and scalings)."""
        ad = tuple((id(a[0]), id(a[1]), a[2]) if a is not None else None for a in self.adapters)
        return tuple(id(w) for w in self.weights), tuple(id(b) for b in self.biases), ad

    def __call__(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, glu: bool = False
    ) -> torch.Tensor:
        """[M, K] -> [M, sum of n_i] in x's dtype, plus `residual` ([M, sum of n_i]) when given, added
        last as the decoder adds the down projection to its residual stream.  glu: x is [M, 2K]
        gate | up and the input is swiglu(gate, up).  For a decode batch the SwiGLU is formed where the
        kernels load x, and the adapter's second product (xa B^T, the scale, the casts) and the residual
        run in the NF4 kernel's epilogue."""
        rows = x.shape[0] <= min(ROWS_MAX, DENSE_FROM_ROWS - 1) and x.dim() == 2 and x.stride(1) == 1
        rows = rows and (residual is None or residual.stride(-1) == 1)
        grouped = (
            rows and self.grouped() and (self.bias_cat is not None or all(b is None for b in self.biases))
        )
        if glu and not grouped:  # the separate SwiGLU kernel, then the plain paths
            half = x.shape[1] // 2
            x, glu = swiglu(x[:, :half], x[:, half:]), False
        xa = None
        if self.a_cat is not None and self.b_bd is not None:  # allocated together
            # with the grouped rows launch only: elsewhere (dense weights, more rows) the GEMM is as good
            xa = lora_xa(x, self.a_cat, glu) if grouped else x.to(self.a_cat.dtype) @ self.a_cat.t()
        if grouped:
            lora = None
            if xa is not None and self.b_bd is not None:
                lora = (xa, self.b_bd, self.scale)
            out = torch.empty(x.shape[0], sum(self.outs), device=x.device, dtype=x.dtype)
            return rows_matmul(x, self.weights, self.bias_cat, None, out, lora, residual, glu)
        if x.shape[0] >= DENSE_FROM_ROWS and self._dense_ok(x.dtype):
            # the group's weights dequantized one under the other (one launch), then one GEMM
            dense = torch.empty(sum(self.outs), x.shape[1], device=x.device, dtype=x.dtype)
            if len(self.weights) == 1:
                self.weights[0].dequantize(dense)
            else:
                dequantize_nf4_stacked(self.weights, dense)
            y = F.linear(x, dense, None if self.bias_cat is None else self.bias_cat.to(x.dtype))
            if xa is not None and self.b_bd is not None:
                y = y + self._lora_term(xa, x.dtype)
            return y if residual is None else residual + y
        y = torch.empty(x.shape[0], sum(self.outs), device=x.device, dtype=x.dtype)
        lo = None
        n0 = 0
        for w, b, n in zip(self.weights, self.biases, self.outs, strict=True):
            cols = slice(n0, n0 + n)
            if isinstance(w, NF4Weight) and x.shape[0] <= MAX_ROWS:
                lora = None
                if xa is not None and self.b_bd is not None:
                    lora = (xa, self.b_bd[cols], None if self.scale is None else self.scale[cols])
                nf4_matmul(x, w, bias=b, out=y[:, cols], lora=lora)
            else:
                if xa is not None and lo is None:
                    lo = self._lora_term(xa, x.dtype)
                dense = w.dequantize() if isinstance(w, NF4Weight) else w
                base = F.linear(x, dense.to(x.dtype), None if b is None else b.to(x.dtype))
                y[:, cols] = base if lo is None else base + lo[:, cols]
            n0 += n
        return y if residual is None else residual + y

    def _dense_ok(self, dtype: torch.dtype) -> bool:
        """Whether the dense path takes this group in one dequant launch (NF4 weights stored for `dtype`,
        alike enough to stack; the bias side by side when there is one)."""
        ws = self.weights
        if self.bias_cat is None and any(b is not None for b in self.biases):
            return False
        if len(ws) == 1:
            return isinstance(ws[0], NF4Weight) and ws[0].dtype == dtype and len(ws[0].shape) == 2
        return can_dequantize_stacked(ws, dtype)

    def _lora_term(self, xa: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(xa B^T) * scale in the adapters' dtype, cast to the output's, as peft adds it."""
        assert self.b_bd is not None  # allocated with a_cat
        lo = xa @ self.b_bd.t()
        return (lo if self.scale is None else lo * self.scale).to(dtype)


@dataclass(eq=False)
class Layer:
    ln1: torch.Tensor
    ln2: torch.Tensor
    qkv: Projs
    o: Projs
    gate_up: Projs
    down: Projs
    q_norm: torch.Tensor | None
    k_norm: torch.Tensor | None
    eps: float
    qk_eps: float


@dataclass(eq=False)
class Decoder:
    """A read-out decoder; shapes: hidden H, heads Hq / Hkv of D dims, intermediate I."""

    layers: list[Layer]
    embed: torch.nn.Module
    norm: torch.Tensor
    norm_eps: float
    head_w: torch.Tensor
    head_b: torch.Tensor | None
    rotary: torch.nn.Module
    n_heads: int
    n_kv: int
    head_dim: int
    scaling: float
    inter: int
    window: int | None
    dtype: torch.dtype
    device: torch.device
    fused_prologue: bool = True  # False: the separate norm / rope / cache-write ops (for comparison)

    def groups(self) -> list[Projs]:
        return [p for layer in self.layers for p in (layer.qkv, layer.o, layer.gate_up, layer.down)]

    def refresh(self) -> None:
        """Copy the current LoRA weights into the step's buffers."""
        for p in self.groups():
            p.refresh()

    def key(self) -> tuple:
        """Equal keys: the same tensors are read, so buffers and a captured graph can be reused."""
        return tuple(p.key() for p in self.groups()), id(self.embed), id(self.head_w), self.window

    def rope_table(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin [length, R] for positions 0..length-1, from the model's own rotary module."""
        pos = torch.arange(length, device=self.device)[None]
        probe = torch.zeros(1, device=self.device, dtype=self.dtype)
        cos, sin = self.rotary(probe, pos)
        return cos[0], sin[0]

    def step(self, tok, cos, sin, slot, key_ok, cache_k, cache_v) -> torch.Tensor:
        """Logits [B, V] (fp32) for tokens `tok` [B]; writes their K/V at cache index `slot` ([1] long).

        cos/sin [B, 1, R] at each row's position; key_ok [B, L] bool marks the cache slots each row
        attends to (its own prompt tokens and everything generated, this token included);
        cache_k/cache_v [layers, B, Hkv, L, D].
        """
        b, d, hq, hkv = tok.shape[0], self.head_dim, self.n_heads, self.n_kv
        x = self.embed(tok)  # [B, H]
        # [B, 1, 1, L] additive mask, made once per step (SDPA would convert a bool mask in every layer)
        mask = torch.zeros(key_ok.shape, device=key_ok.device, dtype=self.dtype)
        mask = mask.masked_fill_(~key_ok, float("-inf"))[:, None, None, :]
        for i, layer in enumerate(self.layers):
            h = rms_norm(x, layer.ln1, layer.eps)
            qkv = layer.qkv(h)  # [B, (Hq + 2 Hkv) D]
            if self.fused_prologue:  # q/k norms, rope and the cache write in one kernel
                q = qk_rope_to_cache(qkv, hq, hkv, layer.q_norm, layer.k_norm, layer.qk_eps, cos[:, 0], sin[:, 0],
                                     cache_k[i], cache_v[i], slot)  # fmt: skip
            else:
                q = qkv[:, : hq * d].view(b, hq, d)
                k = qkv[:, hq * d : (hq + hkv) * d].view(b, hkv, d)
                v = qkv[:, (hq + hkv) * d :].view(b, hkv, 1, d)
                if layer.q_norm is not None and layer.k_norm is not None:  # both or neither (read_decoder)
                    q, k = rms_norm(q, layer.q_norm, layer.qk_eps), rms_norm(k, layer.k_norm, layer.qk_eps)
                q, k = rope(q.reshape(b, hq, 1, d), k.reshape(b, hkv, 1, d), cos, sin)  # [B, H, 1, D]
                cache_k[i].index_copy_(2, slot, k)
                cache_v[i].index_copy_(2, slot, v)
            qg = q.reshape(b, hkv, hq // hkv, d)  # query heads of one kv head as its query rows
            att = F.scaled_dot_product_attention(
                qg, cache_k[i], cache_v[i], attn_mask=mask, scale=self.scaling
            )
            o = layer.o(att.reshape(b, hq * d))
            h, x = add_rms_norm(o, x, layer.ln2, layer.eps)
            gu = layer.gate_up(h)  # [B, 2I]
            x = layer.down(gu, residual=x, glu=True)  # SwiGLU formed where down loads its input
        x = rms_norm(x, self.norm, self.norm_eps)
        return F.linear(x, self.head_w, self.head_b).float()


def _inner(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _projs(modules) -> Projs | str:
    weights, biases, adapters = [], [], []
    for m in modules:
        qs = getattr(getattr(getattr(m, "base_layer", m), "weight", None), "quant_state", None)
        if getattr(qs, "packing_format_for_cpu", False):
            return "bitsandbytes repacked a 4-bit weight for its CPU kernel (not the NF4 layout)"
        p = lora_proj_of(m)
        if p is None:
            return f"{type(m).__name__} projection the fused path cannot read (merged, several adapters, dropout, ...)"
        weights.append(p.weight)
        biases.append(p.bias)
        adapters.append((p.A, p.B, float(p.scaling)) if p.A.shape[0] > 0 else None)
    return Projs(weights, biases, adapters)


def _eps(norm) -> float:
    return float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))


def read_decoder(model, max_len: int | None = None) -> Decoder | str:
    """The model as a `Decoder`, or a reason why the fast step cannot compute it exactly."""
    inner = _inner(model)
    config: Any = getattr(inner, "config", None)  # a transformers PretrainedConfig
    model_type = getattr(config, "model_type", None)
    family = FAMILIES.get(model_type or "")
    if family is None or not family.fast_decode:
        return f"model_type {model_type!r} has no fast decode step"
    if getattr(config, "hidden_act", None) not in ("silu", "swish"):
        return f"activation {getattr(config, 'hidden_act', None)!r}"
    base = getattr(inner, "model", None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if base is None or type(head) is not torch.nn.Linear or not hasattr(base, "layers"):
        return "no plain decoder stack with a linear head"
    if inner.training and float(getattr(config, "attention_dropout", 0.0) or 0.0) > 0:
        return "attention dropout while training"
    layers = []
    window = None
    for layer in base.layers:
        attn, mlp = layer.self_attn, layer.mlp
        names = (type(layer).__name__, type(attn).__name__, type(mlp).__name__)
        if names != (f"{family.prefix}DecoderLayer", f"{family.prefix}Attention", f"{family.prefix}MLP"):
            return f"unexpected layer classes {names}"
        w = getattr(attn, "sliding_window", getattr(config, "sliding_window", None))
        if w is not None:
            window = w if window is None else min(window, w)
        qkv, o = _projs((attn.q_proj, attn.k_proj, attn.v_proj)), _projs((attn.o_proj,))
        gu, down = _projs((mlp.gate_proj, mlp.up_proj)), _projs((mlp.down_proj,))
        if isinstance(qkv, str) or isinstance(o, str) or isinstance(gu, str) or isinstance(down, str):
            return next(p for p in (qkv, o, gu, down) if isinstance(p, str))
        qn, kn = getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)
        layers.append(Layer(
            layer.input_layernorm.weight, layer.post_attention_layernorm.weight, qkv, o, gu, down,
            None if qn is None else qn.weight, None if kn is None else kn.weight,
            _eps(layer.input_layernorm), _eps(qn) if qn is not None else 0.0,
        ))  # fmt: skip
        if _eps(layer.post_attention_layernorm) != layers[-1].eps:
            return "different epsilons in one layer's norms"
    if window is not None and max_len is not None and max_len >= window:
        return f"sliding window {window} shorter than prompt + completion ({max_len})"
    rotary = base.rotary_emb
    rope_type = str(getattr(rotary, "rope_type", "default"))
    if "dynamic" in rope_type or rope_type == "longrope":
        return f"rope type {rope_type!r} depends on the sequence length"
    attn0 = base.layers[0].self_attn
    n_heads, n_kv = int(config.num_attention_heads), int(config.num_key_value_heads)
    emb = base.embed_tokens
    return Decoder(
        layers, emb, base.norm.weight, _eps(base.norm), head.weight, head.bias, rotary, n_heads, n_kv,
        int(attn0.head_dim), float(attn0.scaling), layers[0].gate_up.outs[0] if layers else 0, window,
        emb.weight.dtype, head.weight.device,
    )  # fmt: skip
