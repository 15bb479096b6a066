"""Attention through torch's fused SDPA kernels, with a backward that can start from a forward done
earlier, so the recompute of a checkpointed layer need not run the attention kernel again.

Knows torch only.  `attention(q, k, v, scale=, causal=)` equals
F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=True) (no mask, no
dropout) in value and gradient, running the kernel pair that function would choose (cuDNN or flash on
CUDA, flash-for-CPU on the CPU; cached per device, dtype, head_dim, GQA, causal and SDPA flags; stock
SDPA where no fused pair applies).  `attention(..., saved=s)` with `s` from `attention_forward_only`
on the same q, k, v returns s.out and backpropagates through it with no forward kernel.
Shapes: q [B, Hq, T, D], k and v [B, Hkv, T, D], Hq a multiple of Hkv, k/v never expanded.
With P = softmax(scale q k^T + causal mask), out = P v, lse the log of each row's denominator:
    dv = P^T dout    dP = dout v^T    ds = P * (dP - rowsum(dout * out))
    dq = scale ds k  dk = scale ds^T q          ((q, k, v, out, lse) is all the backward reads)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend

log = logging.getLogger(__name__)
aten = torch.ops.aten


@dataclass(frozen=True, eq=False)
class _Backend:
    """A fused forward op that returns the log-sum-exp, and its backward op."""

    name: str
    forward: Callable  # (q, k, v, scale, causal) -> (out, lse, extras)
    backward: Callable  # (dout, q, k, v, out, lse, extras, scale, causal) -> (dq, dk, dv)


def _cpu_forward(q, k, v, scale, causal):
    out, lse = aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, scale=scale)
    return out, lse, ()


def _cpu_backward(dout, q, k, v, out, lse, extras, scale, causal):
    return aten._scaled_dot_product_flash_attention_for_cpu_backward(
        dout, q, k, v, out, lse, 0.0, causal, scale=scale
    )


def _cudnn_forward(q, k, v, scale, causal):
    out, lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = aten._scaled_dot_product_cudnn_attention(
        q, k, v, None, True, 0.0, causal, False, scale=scale
    )
    return out, lse, (seed, offset, cum_q, cum_k, max_q, max_k)


def _cudnn_backward(dout, q, k, v, out, lse, extras, scale, causal):
    seed, offset, cum_q, cum_k, max_q, max_k = extras
    return aten._scaled_dot_product_cudnn_attention_backward(
        dout, q, k, v, out, lse, seed, offset, None, cum_q, cum_k, max_q, max_k, 0.0, causal, scale=scale
    )


def _flash_forward(q, k, v, scale, causal):
    out, lse, cum_q, cum_k, max_q, max_k, rng, unused, _ = aten._scaled_dot_product_flash_attention(
        q, k, v, 0.0, causal, False, scale=scale
    )
    return out, lse, (cum_q, cum_k, max_q, max_k, rng, unused)


def _flash_backward(dout, q, k, v, out, lse, extras, scale, causal):
    cum_q, cum_k, max_q, max_k, rng, unused = extras
    return aten._scaled_dot_product_flash_attention_backward(
        dout, q, k, v, out, lse, cum_q, cum_k, max_q, max_k, 0.0, causal, rng, unused, scale=scale
    )


CPU = _Backend("cpu_flash", _cpu_forward, _cpu_backward)
CUDNN = _Backend("cudnn", _cudnn_forward, _cudnn_backward)
FLASH = _Backend("flash", _flash_forward, _flash_backward)


class Saved(NamedTuple):
    """What a forward leaves for a later backward: out [B, Hq, T, D], lse (fp32 [B, Hq, T]; cuDNN's
    [B, Hq, T, 1]), the op's other outputs its backward takes (ints, tiny tensors), and the op pair."""

    out: torch.Tensor
    lse: torch.Tensor
    extras: tuple
    backend: _Backend


_CHOICE: dict[tuple, list[_Backend]] = {}


def _candidates(q, k, v, scale: float, causal: bool) -> list[_Backend]:
    """The fused pair F.scaled_dot_product_attention picks for these inputs (it knows each backend's
    limits: head dims, dtypes, architectures, cuDNN versions, deterministic mode), flash after cuDNN."""
    choice = torch._fused_sdp_choice(q, k, v, None, 0.0, causal, scale=scale, enable_gqa=True)
    if q.device.type == "cpu":
        return [CPU] if choice == SDPBackend.FLASH_ATTENTION.value else []
    if q.device.type == "cuda" and choice == SDPBackend.CUDNN_ATTENTION.value:
        return [CUDNN, FLASH]
    if q.device.type == "cuda" and choice == SDPBackend.FLASH_ATTENTION.value:
        return [FLASH]
    return []


def _key(q, k, causal: bool) -> tuple:
    flags = (
        torch.backends.cuda.cudnn_sdp_enabled(),
        torch.backends.cuda.flash_sdp_enabled(),
        torch.are_deterministic_algorithms_enabled(),
    )  # an sdpa_kernel(...) context or deterministic mode changes the choice: a key of its own
    return (q.device, q.dtype, q.shape[-1], q.shape[1] != k.shape[1], causal, flags)


def _run_forward(q, k, v, scale: float, causal: bool) -> Saved | None:
    """The forward through the cached pair, no graph recorded; None where only the stock one runs."""
    key = _key(q, k, causal)
    if key not in _CHOICE:
        _CHOICE[key] = _candidates(q, k, v, scale, causal)
    backends = _CHOICE[key]
    while backends:
        try:
            with torch.no_grad():
                out, lse, extras = backends[0].forward(q, k, v, scale, causal)
                return Saved(out, lse, extras, backends[0])
        except RuntimeError as err:  # e.g. a cuDNN graph this version cannot build
            log.warning("tunesmith.kernels.ops.attention: %s attention failed, not used again for %s: %s",
                        backends[0].name, key[:5], err)  # fmt: skip
            backends.pop(0)
    return None


@dataclass(eq=False)
class _Args:
    """AttentionFunction's non-tensor arguments."""

    scale: float
    causal: bool
    extras: tuple
    backend: _Backend


class AttentionFunction(torch.autograd.Function):
    """out = the given forward's output; backward through the backend's op from (q, k, v, out, lse).
    The forward kernel ran before (no_grad), here or in the first forward of a checkpointed layer."""

    @staticmethod
    def forward(ctx, q, k, v, out, lse, args: _Args):
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.args = args  # no tensor of the graph in it: extras are the op's own tiny outputs
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        a = ctx.args
        groups = kv_heads_per_backward(q, k)
        if groups >= k.shape[1]:
            dq, dk, dv = a.backend.backward(dout, q, k, v, out, lse, a.extras, a.scale, a.causal)
        else:
            dq, dk, dv = _backward_by_head_groups(dout, q, k, v, out, lse, a, groups)
        return dq, dk, dv, None, None, None


# The fused backward kernels allocate their own buffers for all heads at once: an fp32 accumulator of
# dq (2 query widths a token) and, for grouped-query attention, dk and dv expanded to every query head
# (2 more).  At 65,536 tokens of an 8B model that is 2 GiB on top of the gradients, the largest single
# allocation of a long step.  Heads are independent, so past BACKWARD_BUFFER_BYTES the backward runs
# over groups of KV heads (each with its query heads): the same values, buffers of one group's size.
BACKWARD_BUFFER_BYTES = 1 << 28


def _backward_buffer_bytes(q: torch.Tensor, k: torch.Tensor) -> int:
    """The bytes of the kernels' own buffers for a backward over q's heads: dq's fp32 accumulator and,
    where k has fewer heads, the expanded dk and dv."""
    per_query_head = q.shape[0] * q.shape[2] * q.shape[3]
    expanded = 2 * per_query_head * q.element_size() if q.shape[1] != k.shape[1] else 0
    return q.shape[1] * (per_query_head * 4 + expanded)


def kv_heads_per_backward(q: torch.Tensor, k: torch.Tensor, limit: int | None = None) -> int:
    """How many KV heads one backward call takes: all of them when their buffers fit `limit` (default
    BACKWARD_BUFFER_BYTES), else the largest divisor of k's head count whose share does (at least one)."""
    limit = BACKWARD_BUFFER_BYTES if limit is None else limit
    heads = k.shape[1]
    whole = _backward_buffer_bytes(q, k)
    for n in range(heads, 0, -1):
        if heads % n == 0 and whole * n <= limit * heads:
            return n
    return 1


def _backward_by_head_groups(dout, q, k, v, out, lse, a: _Args, groups: int):
    """The backward one group of `groups` KV heads (and their query heads) at a time, written into
    gradients allocated once: equal to the one-call backward, head by head."""
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    per_kv = q.shape[1] // k.shape[1]
    for h in range(0, k.shape[1], groups):
        qs = slice(h * per_kv, (h + groups) * per_kv)
        ks = slice(h, h + groups)
        part = a.backend.backward(
            dout[:, qs], q[:, qs], k[:, ks], v[:, ks], out[:, qs], lse[:, qs], a.extras, a.scale, a.causal
        )
        dq[:, qs].copy_(part[0])
        dk[:, ks].copy_(part[1])
        dv[:, ks].copy_(part[2])
        del part  # this group's buffers go back to the allocator before the next group's
    return dq, dk, dv


def _stock(q, k, v, scale: float, causal: bool) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=True)


def attention_forward_only(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float, causal: bool
) -> tuple[torch.Tensor, Saved | None]:
    """The forward alone, no graph: out [B, Hq, T, D] and what `attention(..., saved=)` needs to
    backpropagate later without this kernel (None where only the stock function applies)."""
    saved = _run_forward(q, k, v, scale, causal)
    if saved is None:
        with torch.no_grad():
            return _stock(q, k, v, scale, causal), None
    return saved.out, saved


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: float,
    causal: bool,
    saved: Saved | None = None,
) -> torch.Tensor:
    """softmax(scale q k^T (+ causal mask)) v per head, heads grouped by Hq // Hkv: out [B, Hq, T, D].
    `saved` (attention_forward_only's, on the same q, k, v) skips the forward kernel."""
    if saved is None:
        saved = _run_forward(q, k, v, scale, causal)
        if saved is None:
            return _stock(q, k, v, scale, causal)
    args = _Args(scale, causal, saved.extras, saved.backend)
    return AttentionFunction.apply(q, k, v, saved.out, saved.lse, args)


__all__ = ["AttentionFunction", "Saved", "attention", "attention_forward_only", "kv_heads_per_backward"]
