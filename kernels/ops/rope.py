"""Rotary position embedding for q and k together, forward and backward, from the caller's cos/sin.

Knows torch and triton only.  It takes cos and sin exactly as transformers' rotary modules return
them ([batch or 1, seq, rot_dim]), so every rope scaling (default, linear, llama3, yarn, ...) works
without this module knowing about it.  rot_dim may be smaller than head_dim (partial rotary): the
remaining dims pass through.  Uses the "rotate half" layout of transformers' Llama family; it does not
know the interleaved (GPT-J) layout.

Two entry points, same kernel and math:
  * `rope(q, k, cos, sin)` on [batch, heads, seq, head_dim] tensors (any strides with a unit last one,
    e.g. views of the projection output with seq outermost) returns new tensors.
  * `rope_(q, k, cos, sin, head_dim)` rotates q and k *in place*, in the projections' own layout
    [batch, seq, heads * head_dim] (or [batch, seq, heads, head_dim]), and its backward rotates the
    incoming gradients in place too (the transpose of the rotation, per position; pass-through dims are
    left as they are).  No rotated copies of q and k exist (neither in the forward and the recompute
    nor, for dq and dk, in the backward).  Conditions, which
    kernels.patch checks before using it: q and k are tensors of their own, not autograd views and not
    leaves (`can_rope_inplace`: the fused q/k/v projection's outputs, or the q/k norms' outputs), nothing
    saved them for a backward (autograd's version counter would raise), and the gradients reaching the
    rotated q and k are not read by anything else (they come straight from the attention's backward).
    The Function marks q and k dirty, so autograd knows they changed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._launch import check_float, check_same_device


@triton.jit
def _rope_kernel(
    X, Y, COS, SIN, n_heads, seq_len, sxb, sxh, sxt, syb, syh, syt, scb, sct, half, head_dim,
    X2, Y2, n_heads2, s2xb, s2xh, s2xt, s2yb, s2yh, s2yt,
    BACKWARD: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr,
    PAIR: tl.constexpr,
):  # fmt: skip
    """One (batch, position), all heads.  With x = [x1, x2, pass] split at half and 2 * half,
    c = [c1, c2] = cos and s = [s1, s2] = sin:

        forward   y1 = x1 c1 - x2 s1     y2 = x2 c2 + x1 s2
        backward  y1 = x1 c1 + x2 s2     y2 = x2 c2 - x1 s1   (the transpose, applied to dy)
        pass-through dims are copied.

    PAIR: a second tensor (X2 -> Y2, its own heads and strides, same batch, positions and head_dim:
    k next to q) is rotated by the programs of grid column 1, so q and k take one launch; each element
    gets the same arithmetic as in a launch of its own.
    """
    if PAIR:
        second = tl.program_id(1) == 1
        X = tl.where(second, X2, X)
        Y = tl.where(second, Y2, Y)
        n_heads = tl.where(second, n_heads2, n_heads)
        sxb = tl.where(second, s2xb, sxb)
        sxh = tl.where(second, s2xh, sxh)
        sxt = tl.where(second, s2xt, sxt)
        syb = tl.where(second, s2yb, syb)
        syh = tl.where(second, s2yh, syh)
        syt = tl.where(second, s2yt, syt)
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
    for name, x in (("q", q), ("k", k)):
        check_float(name, x)
        if x.dim() != 4 or x.stride(-1) != 1:
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


def _cos_sin(cos, sin, b, t):
    cos = cos.expand(b, t, -1).contiguous() if cos.stride(-1) != 1 else cos
    sin = sin.expand(b, t, -1).contiguous() if sin.stride(-1) != 1 else sin
    if sin.stride() != cos.stride():
        cos, sin = cos.contiguous(), sin.contiguous()
    return cos, sin


def rope_apply(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, half: int, backward: bool, inplace: bool = False
) -> torch.Tensor:
    """Launches the kernel on one [batch, heads, seq, head_dim] tensor; returns a new tensor, or x
    rotated in its own memory with `inplace` (x must then have a unit last stride and no overlap)."""
    if inplace and x.stride(-1) != 1:
        raise ValueError("in-place RoPE needs a unit last stride")
    if x.stride(-1) != 1:
        x = x.contiguous()
    b, n_heads, t, d = x.shape
    y = x if inplace else torch.empty_like(x)
    if y.stride(-1) != 1:
        y = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    cos, sin = _cos_sin(cos, sin, b, t)
    scb = 0 if cos.shape[0] == 1 else cos.stride(0)
    block_r = triton.next_power_of_2(half)
    block_h = max(1, min(triton.next_power_of_2(n_heads), 4096 // block_r))
    block_p = 0 if 2 * half == d or inplace else triton.next_power_of_2(d - 2 * half)
    if x.numel() > 0:
        sx, sy = x.stride(), y.stride()
        _rope_kernel[(b * t,)](
            x, y, cos, sin, n_heads, t, sx[0], sx[1], sx[2], sy[0], sy[1], sy[2], scb, cos.stride(1), half, d,
            x, y, n_heads, sx[0], sx[1], sx[2], sy[0], sy[1], sy[2],
            BACKWARD=backward, BLOCK_H=block_h, BLOCK_R=block_r, BLOCK_P=block_p, PAIR=False,
        )  # fmt: skip
    return y


def rope_pair_(q: torch.Tensor, k: torch.Tensor, cos, sin, half: int, backward: bool) -> None:
    """q and k ([batch, heads, seq, head_dim] views, unit last stride, no overlap, same dtype, batch,
    seq and head_dim) rotated in place by one launch: the values of two `rope_apply(..., inplace=True)`."""
    if q.stride(-1) != 1 or k.stride(-1) != 1:
        raise ValueError("in-place RoPE needs a unit last stride")
    b, hq, t, d = q.shape
    cos, sin = _cos_sin(cos, sin, b, t)
    scb = 0 if cos.shape[0] == 1 else cos.stride(0)
    block_r = triton.next_power_of_2(half)
    block_h = max(1, min(triton.next_power_of_2(max(hq, k.shape[1])), 4096 // block_r))
    if q.numel() == 0 or k.numel() == 0 or q.dtype != k.dtype:  # one launch each
        for x in (q, k):
            if x.numel():
                rope_apply(x, cos, sin, half, backward, inplace=True)
        return
    sq, sk = q.stride(), k.stride()
    _rope_kernel[(b * t, 2)](
        q, q, cos, sin, hq, t, sq[0], sq[1], sq[2], sq[0], sq[1], sq[2], scb, cos.stride(1), half, d,
        k, k, k.shape[1], sk[0], sk[1], sk[2], sk[0], sk[1], sk[2],
        BACKWARD=backward, BLOCK_H=block_h, BLOCK_R=block_r, BLOCK_P=0, PAIR=True,
    )  # fmt: skip


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


def _heads(t: torch.Tensor, head_dim: int) -> torch.Tensor:
    """[B, T, H * D] or [B, T, H, D] -> the [B, H, T, D] view the kernel takes (no copy)."""
    if t.dim() == 3:
        t = t.view(t.shape[0], t.shape[1], -1, head_dim)
    if t.dim() != 4 or t.shape[-1] != head_dim:
        raise ValueError(f"expected [batch, seq, heads * {head_dim}] or [batch, seq, heads, {head_dim}]")
    return t.transpose(1, 2)


def _dense(t: torch.Tensor) -> bool:
    """True when t's elements never share memory (sorted strides each cover the dims below; gaps are
    fine) and its last stride is 1, so the kernel can write it in place."""
    if t.stride(-1) != 1:
        return False
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(t.shape, t.stride(), strict=True) if sz > 1):
        if stride < expected:
            return False
        expected = stride * size
    return True


def can_rope_inplace(t: torch.Tensor) -> bool:
    """True when `rope_` may rotate t in place: a tensor of its own (not an autograd view, not a leaf
    that requires grad), floating point, with a unit last stride."""
    return (
        not t._is_view()
        and not (t.is_leaf and t.requires_grad)
        and t.dtype.is_floating_point
        and t.dim() in (3, 4)
        and _dense(t)
    )


class RoPEInplaceFunction(torch.autograd.Function):
    """(q, k) rotated in their own memory (marked dirty); saves cos and sin only.  The backward rotates
    dq and dk in place as well (into a copy when a gradient cannot be written: expanded, overlapping)."""

    @staticmethod
    def forward(ctx, q, k, cos, sin, head_dim):
        q4, k4 = _heads(q, head_dim), _heads(k, head_dim)
        half = _check(q4, k4, cos, sin)
        rope_pair_(q4, k4, cos, sin, half, False)  # one launch for q and k
        ctx.mark_dirty(q, k)
        ctx.save_for_backward(cos, sin)
        ctx.half, ctx.head_dim = half, head_dim
        return q, k

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin = ctx.saved_tensors
        dq, dk = rope_backward_(dq, dk, cos, sin, ctx.half, ctx.head_dim)
        return dq, dk, None, None, None


def rope_backward_(dq, dk, cos, sin, half: int, head_dim: int):
    """The gradients of rotated q and k ([B, T, H * D] or [B, T, H, D], either may be None) taken back
    through the rotation, in their own memory where it can be written (else into a copy: an expanded
    zero, overlapping strides); returns them."""

    def writable(d):
        return d if d is None or _dense(d) else d.contiguous()

    dq, dk = writable(dq), writable(dk)
    if dq is not None and dk is not None and dq.data_ptr() != dk.data_ptr():
        rope_pair_(_heads(dq, head_dim), _heads(dk, head_dim), cos, sin, half, True)
        return dq, dk

    def rotate(d):
        if d is not None:
            rope_apply(_heads(d, head_dim), cos, sin, half, True, inplace=True)
        return d

    return rotate(dq), rotate(dk)


def rope_half(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, head_dim: int) -> int:
    """Half the rotated width for q and k as `rope_` takes them (checks their shapes against cos/sin)."""
    return _check(_heads(q, head_dim), _heads(k, head_dim), cos, sin)


def rope_(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding of q [B, T, Hq * D] and k [B, T, Hk * D] (or [B, T, H, D]) in place; returns
    q and k themselves.  cos/sin [B or 1, T, R], R <= D = head_dim.  See the module docstring for when
    it applies (`can_rope_inplace(q) and can_rope_inplace(k)`, and gradients not shared)."""
    if q is k or q.data_ptr() == k.data_ptr():
        raise ValueError("rope_ needs q and k in separate memory")
    for name, t in (("q", q), ("k", k)):
        if not can_rope_inplace(t):
            raise ValueError(f"{name} cannot be rotated in place (a view, a leaf or not dense): use rope()")
    return RoPEInplaceFunction.apply(q, k, cos, sin, int(head_dim))


def rope(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding of q [B, Hq, T, D] and k [B, Hk, T, D] with cos/sin [B or 1, T, R], R <= D.

    Same result as transformers' `apply_rotary_pos_emb` (rotate-half layout) on the first R dims.
    """
    return RoPEFunction.apply(q, k, cos, sin)
