"""Rotary position embedding for q and k together, forward and backward, from the caller's cos/sin.

Knows torch and triton only.  It takes cos and sin exactly as transformers' rotary modules return
them ([batch or 1, seq, rot_dim]), so every rope scaling (default, linear, llama3, yarn, ...) works
without this module knowing about it.  rot_dim may be smaller than head_dim (partial rotary): the
remaining dims pass through.  Uses the "rotate half" layout of transformers' Llama family; it does not
know the interleaved (GPT-J) layout.  Outputs are new tensors with the inputs' strides (q and k are
usually views of the projection output, [batch, heads, seq, head_dim] with seq outermost in memory).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_float, check_same_device


@triton.jit
def _rope_kernel(
    X, Y, COS, SIN, n_heads, seq_len, sxb, sxh, sxt, syb, syh, syt, scb, sct, half, head_dim,
    BACKWARD: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """One (batch, position), all heads.  With x = [x1, x2, pass] split at half and 2 * half,
    c = [c1, c2] = cos and s = [s1, s2] = sin:

        forward   y1 = x1 c1 - x2 s1     y2 = x2 c2 + x1 s2
        backward  y1 = x1 c1 + x2 s2     y2 = x2 c2 - x1 s1   (the transpose, applied to dy)
        pass-through dims are copied.
    """
    pid = tl.program_id(0)
    b = pid // seq_len
    t = pid % seq_len
    hs = tl.arange(0, BLOCK_H)[:, None]
    rs = tl.arange(0, BLOCK_R)[None, :]
    rmask = rs < half
    cs = COS + b * scb + t * sct
    ss = SIN + b * scb + t * sct
    c1 = tl.load(cs + rs, mask=rmask, other=0.0).to(tl.float32)
    c2 = tl.load(cs + half + rs, mask=rmask, other=0.0).to(tl.float32)
    s1 = tl.load(ss + rs, mask=rmask, other=0.0).to(tl.float32)
    s2 = tl.load(ss + half + rs, mask=rmask, other=0.0).to(tl.float32)
    xb = X + b.to(tl.int64) * sxb + t.to(tl.int64) * sxt
    yb = Y + b.to(tl.int64) * syb + t.to(tl.int64) * syt
    for h0 in range(0, n_heads, BLOCK_H):
        hh = h0 + hs
        m = (hh < n_heads) & rmask
        xp = xb + hh * sxh
        yp = yb + hh * syh
        x1 = tl.load(xp + rs, mask=m, other=0.0).to(tl.float32)
        x2 = tl.load(xp + half + rs, mask=m, other=0.0).to(tl.float32)
        if BACKWARD:
            y1 = x1 * c1 + x2 * s2
            y2 = x2 * c2 - x1 * s1
        else:
            y1 = x1 * c1 - x2 * s1
            y2 = x2 * c2 + x1 * s2
        tl.store(yp + rs, y1.to(Y.dtype.element_ty), mask=m)
        tl.store(yp + half + rs, y2.to(Y.dtype.element_ty), mask=m)
        if BLOCK_P > 0:
            ps = 2 * half + tl.arange(0, BLOCK_P)[None, :]
            pm = (hh < n_heads) & (ps < head_dim)
            tl.store(yp + ps, tl.load(xp + ps, mask=pm, other=0.0), mask=pm)


def _check(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> int:
    for name, t in (("q", q), ("k", k)):
        check_float(name, t)
        if t.dim() != 4 or t.stride(-1) != 1:
            raise ValueError(f"{name} must be [batch, heads, seq, head_dim] with unit last stride")
    check_same_device(q=q, k=k, cos=cos, sin=sin)
    b, _, t, d = q.shape
    if k.shape[0] != b or k.shape[2] != t or k.shape[3] != d:
        raise ValueError(f"k shape {tuple(k.shape)} does not fit q shape {tuple(q.shape)}")
    if cos.shape != sin.shape or cos.dim() != 3 or cos.shape[0] not in (1, b) or cos.shape[1] != t:
        raise ValueError(f"cos/sin must be [batch or 1, seq, rot_dim], got {tuple(cos.shape)}")
    rot = cos.shape[-1]
    if rot % 2 or rot > d:
        raise ValueError(f"rot_dim {rot} must be even and at most head_dim {d}")
    return rot // 2


def rope_apply(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, half: int, backward: bool
) -> torch.Tensor:
    """Launches the kernel on one [batch, heads, seq, head_dim] tensor; returns a new tensor."""
    if x.stride(-1) != 1:
        x = x.contiguous()
    b, n_heads, t, d = x.shape
    y = torch.empty_like(x)
    if y.stride(-1) != 1:
        y = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    cos = cos.expand(b, t, -1).contiguous() if cos.stride(-1) != 1 else cos
    sin = sin.expand(b, t, -1).contiguous() if sin.stride(-1) != 1 else sin
    if sin.stride() != cos.stride():
        cos, sin = cos.contiguous(), sin.contiguous()
    scb = 0 if cos.shape[0] == 1 else cos.stride(0)
    block_r = triton.next_power_of_2(half)
    block_h = max(1, min(triton.next_power_of_2(n_heads), 4096 // block_r))
    block_p = 0 if 2 * half == d else triton.next_power_of_2(d - 2 * half)
    if x.numel() > 0:
        _rope_kernel[(b * t,)](
            x, y, cos, sin, n_heads, t, x.stride(0), x.stride(1), x.stride(2), y.stride(0), y.stride(1),
            y.stride(2), scb, cos.stride(1), half, d,
            BACKWARD=backward, BLOCK_H=block_h, BLOCK_R=block_r, BLOCK_P=block_p,
        )  # fmt: skip
    return y


class RoPEFunction(torch.autograd.Function):
    """(q, k) -> (rotated q, rotated k); saves cos and sin only."""

    @staticmethod
    def forward(ctx, q, k, cos, sin):
        half = _check(q, k, cos, sin)
        ctx.save_for_backward(cos, sin)
        ctx.half = half
        return rope_apply(q, cos, sin, half, False), rope_apply(k, cos, sin, half, False)

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin = ctx.saved_tensors
        dq = None if dq is None else rope_apply(dq, cos, sin, ctx.half, True)
        dk = None if dk is None else rope_apply(dk, cos, sin, ctx.half, True)
        return dq, dk, None, None


def rope(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding of q [B, Hq, T, D] and k [B, Hk, T, D] with cos/sin [B or 1, T, R], R <= D.

    Same result as transformers' `apply_rotary_pos_emb` (rotate-half layout) on the first R dims.
    """
    return RoPEFunction.apply(q, k, cos, sin)
