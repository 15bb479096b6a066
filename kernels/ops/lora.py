"""LoRA projections with a hand-written backward: one projection, attention q/k/v (the MLP block built
on them: ops.lora_mlp).

Knows torch and triton only; kernels.patch reads A, B, scaling, W and bias out of peft's modules.
Each projection is  y = x W^T (+ bias) + s (x A^T) B^T,  the frozen base W dense or an `NF4Weight`
dequantized on the fly.  Gradients: dX, dA, dB (W and the bias are frozen); matmuls run in x's dtype.
With xa = x A^T [N, r] and dy [N, out]:
    dB = s dy^T xa    dya = s dy B    dA = dya^T x    dX = dy W + dya A
Projections sharing an input (q/k/v; gate/up) run as one matmul over [x | s xa] @ [W | B]^T.  Inside
the recompute of a checkpointed layer (memory.offload.recomputing()) the MLP's unread output is not
formed and the dequantized weights are kept for the backward of the same call.  The why, the MLP
backward and the memory held: kernels/DESIGN.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..memory.offload import recomputing
from .nf4 import NF4Weight, can_dequantize_stacked, dense_weight, dequantize_nf4, dequantize_nf4_stacked
from .rope import rope_backward_


@dataclass(eq=False)
class LoRAProj:
    """One LoRA projection: trainable A [r, in], B [out, r]; frozen weight [out, in], bias, scaling."""

    A: torch.Tensor
    B: torch.Tensor
    weight: torch.Tensor | NF4Weight
    bias: torch.Tensor | None = None
    scaling: float = 1.0


@dataclass(eq=False)
class _Frozen:
    """The non-trainable part of a projection, passed to the autograd Functions as one object."""

    weight: torch.Tensor | NF4Weight
    bias: torch.Tensor | None
    scaling: float


def _w(f: _Frozen, dtype: torch.dtype) -> torch.Tensor:
    w = dense_weight(f.weight)
    return w if w.dtype == dtype else w.to(dtype)


def lora_linear_forward(
    x2: torch.Tensor, A: torch.Tensor, B: torch.Tensor, f: _Frozen, return_xa: bool = False, w=None
):
    """y = x W^T + bias + s (x A^T) B^T for x2 [N, in] (and xa = x A^T when asked); `w`: W in x's dtype
    when the caller already has it."""
    y = x2 @ (_w(f, x2.dtype) if w is None else w).t()
    if f.bias is not None:
        y += f.bias.to(y.dtype)
    xa = x2 @ A.to(x2.dtype).t()
    y = y.addmm_(xa, B.to(x2.dtype).t(), alpha=f.scaling)
    return (y, xa) if return_xa else y


def lora_linear_backward(dy, x2, A, B, f: _Frozen, dx=None, need=(True, True, True), w=None):
    """Returns (dx, dA, dB) for one projection; dx is accumulated into `dx` when given; `w` as above."""
    dt = x2.dtype
    a, b = A.to(dt), B.to(dt)
    dya = (dy @ b).mul_(f.scaling)  # [N, r]
    dA = (dya.t() @ x2).to(A.dtype) if need[1] else None
    dB = (dy.t() @ (x2 @ a.t())).mul_(f.scaling).to(B.dtype) if need[2] else None
    if need[0]:
        w = _w(f, dt) if w is None else w
        dx = dy @ w if dx is None else dx.addmm_(dy, w)
        dx.addmm_(dya, a)
    return dx, dA, dB


class LoRALinearFunction(torch.autograd.Function):
    """One projection; saves x, A, B (and W, during a recompute, for this call's backward).
    `output_unused`: the caller never reads y's value (a recompute handed the sum it feeds, see
    kernels.patch), so no GEMM or dequant runs: y is a zero of its shape, and the backward is the same."""

    @staticmethod
    def forward(ctx, x, A, B, frozen, output_unused=False):
        x2 = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(x2, A, B)
        ctx.frozen = frozen
        if output_unused:
            ctx.w = None
            return x2.new_zeros(()).expand(*x.shape[:-1], _out_features(frozen))
        w = _w(frozen, x2.dtype)
        ctx.w = w if recomputing() else None
        return lora_linear_forward(x2, A, B, frozen, w=w).view(*x.shape[:-1], -1)

    @staticmethod
    def backward(ctx, dy):
        x2, A, B = ctx.saved_tensors
        dy2 = dy.reshape(-1, dy.shape[-1])
        w, ctx.w = ctx.w, None
        dx, dA, dB = lora_linear_backward(dy2, x2, A, B, ctx.frozen, need=ctx.needs_input_grad[:3], w=w)
        return (None if dx is None else dx.view(*dy.shape[:-1], -1)), dA, dB, None, None


def _out_features(f: _Frozen) -> int:
    return f.weight.shape[0]


def stacked_weight(
    frozens, in_f: int, extra: int, dtype: torch.dtype, device, extra_rows: int = 0
) -> torch.Tensor:
    """[sum of out (+ extra_rows), in_f + extra]: the base weights one under the other, `extra` free
    columns right (and `extra_rows` free rows below)."""
    outs = [_out_features(f) for f in frozens]
    wp = torch.empty(sum(outs) + extra_rows, in_f + extra, dtype=dtype, device=device)
    weights = [f.weight for f in frozens]
    if can_dequantize_stacked(weights, dtype):  # q/k/v, gate/up: one launch (same values)
        dst = wp.narrow(0, 0, sum(outs))
        dequantize_nf4_stacked(weights, dst.narrow(1, 0, in_f) if extra else dst)
        return wp
    r0 = 0
    for f, o in zip(frozens, outs, strict=True):
        dst = wp.narrow(0, r0, o)
        if extra:
            dst = dst.narrow(1, 0, in_f)
        if isinstance(f.weight, NF4Weight) and f.weight.dtype == dtype:
            dequantize_nf4(f.weight, out=dst)
        else:
            dst.copy_(dense_weight(f.weight))
        r0 += o
    return wp


def _with_b(wp, in_f, Bs, frozens):
    """Fills wp's extra columns with the block-diagonal B's: wp = [W | blockdiag(B)]."""
    right = wp.narrow(1, in_f, wp.shape[1] - in_f)
    right.zero_()
    r0, c0 = 0, 0
    for b, f in zip(Bs, frozens, strict=True):
        o, r = _out_features(f), b.shape[1]
        right.narrow(0, r0, o).narrow(1, c0, r).copy_(b)
        r0, c0 = r0 + o, c0 + r
    return wp


def _padded(in_f: int, r: int) -> int:
    """Extra columns for r adapter ranks, padded so rows stay 128-byte aligned (in + extra = 0 mod 64)."""
    return r if r == 0 else -(in_f + r) % 64 + r


def group_weight(frozens, Bs, in_f: int, dtype: torch.dtype, device) -> torch.Tensor:
    """[W_1 ; W_2 ; ... | blockdiag(B_1, B_2, ...)] in `dtype`, the adapters' columns padded (_padded):
    the one weight of projections sharing an input (lora_group_forward, lora_group_backward)."""
    extra = _padded(in_f, sum(b.shape[1] for b in Bs))
    return _with_b(stacked_weight(frozens, in_f, extra, dtype, device), in_f, Bs, frozens)


def _ranks(As):
    offs, o = [], 0
    for a in As:
        offs.append((o, a.shape[0]))
        o += a.shape[0]
    return offs


def _common_scaling(frozens) -> float | None:
    """The scaling every adapter of a group shares (peft's usual case: one alpha / r), else None.
    One multiply over all their columns then gives the same values as one per adapter."""
    s = frozens[0].scaling
    return s if all(f.scaling == s for f in frozens) else None


def _a_cat(As, dt):
    return torch.cat([a.to(dt) for a in As])  # [R, in]


def lora_group_forward(x2, As, Bs, frozens, wp=None, a_cat=None):
    """Y = [x | s xa] @ [W | blockdiag(B)]^T (+ biases) for projections sharing x2; returns
    (Y, xa, wp, a_cat), wp = [W | blockdiag(B)] and a_cat = [A_1; A_2; ...] being what lora_group_backward
    needs again (given back in: the same values, nothing dequantized again)."""
    dt, (n, in_f) = x2.dtype, x2.shape
    a_cat = _a_cat(As, dt) if a_cat is None else a_cat
    rank = a_cat.shape[0]
    xa = x2 @ a_cat.t()  # [N, R]
    extra = _padded(in_f, rank)
    xp = torch.empty(n, in_f + extra, dtype=dt, device=x2.device)
    xp.narrow(1, 0, in_f).copy_(x2)
    if extra > rank:
        xp.narrow(1, in_f + rank, extra - rank).zero_()
    s = _common_scaling(frozens)
    if s is not None:  # the same multiply per element as one per adapter
        torch.mul(xa, s, out=xp.narrow(1, in_f, rank))
    else:
        for (c0, r), f in zip(_ranks(As), frozens, strict=True):
            torch.mul(xa.narrow(1, c0, r), f.scaling, out=xp.narrow(1, in_f + c0, r))
    if wp is None:
        wp = group_weight(frozens, Bs, in_f, dt, x2.device)
    biases = [f.bias for f in frozens]
    if all(b is None for b in biases):
        return xp @ wp.t(), xa, wp, a_cat
    bias = torch.cat(
        [
            b.to(dt) if b is not None else wp.new_zeros(_out_features(f))
            for b, f in zip(biases, frozens, strict=True)
        ]
    )
    return torch.addmm(bias, xp, wp.t()), xa, wp, a_cat


def lora_group_backward(dY, x2, xa, As, Bs, frozens, need, wp=None, a_cat=None):
    """From dY [N, sum of out] (the outputs side by side): (dX, [dA_i], [dB_i]) for lora_group_forward;
    `wp`, `a_cat`: lora_group_forward's when the caller kept them (same A, B: same values)."""
    dt, in_f = x2.dtype, x2.shape[1]
    rank = xa.shape[1]
    if wp is None:
        wp = group_weight(frozens, Bs, in_f, dt, x2.device)
    grad = dY @ wp  # [N, in + R (+ pad)] = [dY W | dY_i B_i ... | 0]
    dx, dyb = grad.narrow(1, 0, in_f), grad.narrow(1, in_f, rank)
    s = _common_scaling(frozens)
    if s is not None:
        dyb.mul_(s)  # dya_i = s_i dY_i B_i, all adapters at once (the same multiply per element)
    dAs, dBs, r0 = [], [], 0
    for i, ((c0, r), f) in enumerate(zip(_ranks(As), frozens, strict=True)):
        o = _out_features(f)
        dya = dyb.narrow(1, c0, r)
        if s is None:
            dya.mul_(f.scaling)  # dya_i = s_i dY_i B_i
        dAs.append((dya.t() @ x2).to(As[i].dtype) if need[1 + 2 * i] else None)
        dBs.append(
            (dY.narrow(1, r0, o).t() @ xa.narrow(1, c0, r)).mul_(f.scaling).to(Bs[i].dtype)
            if need[2 + 2 * i]
            else None
        )
        r0 += o
    dx.addmm_(dyb, _a_cat(As, dt) if a_cat is None else a_cat)  # + dya A
    return dx, dAs, dBs


class LoRAQKVFunction(torch.autograd.Function):
    """q, k, v projections of one input, one matmul each way; saves x, xa and the adapters (and the
    stacked [W | B], during a recompute, for this call's backward).  q, k, v are returned as separate
    tensors (not views) over one [N, sum of out] buffer."""

    @staticmethod
    def forward(ctx, x, qA, qB, kA, kB, vA, vB, frozen):
        x2 = x.reshape(-1, x.shape[-1])
        y, xa, wp, a_cat = lora_group_forward(x2, (qA, kA, vA), (qB, kB, vB), frozen)
        ctx.save_for_backward(x2, xa, qA, qB, kA, kB, vA, vB)
        lean = recomputing()
        ctx.frozen, ctx.wp, ctx.a_cat = frozen, (wp if lean else None), (a_cat if lean else None)
        outs = y.split([_out_features(f) for f in frozen], dim=1)
        # detached: q, k, v are tensors of their own to autograd (disjoint parts of y's memory, not
        # views), so the in-place RoPE may rotate q and k where they lie (kernels.ops.rope.rope_)
        return tuple(o.view(*x.shape[:-1], -1).detach() for o in outs)

    @staticmethod
    def backward(ctx, dq, dk, dv):
        wp, a_cat, ctx.wp, ctx.a_cat = ctx.wp, ctx.a_cat, None, None
        return _qkv_backward(ctx, dq, dk, dv, wp, a_cat) + (None,)


def _qkv_backward(ctx, dq, dk, dv, wp, a_cat) -> tuple:
    """(dx, dA_q, dB_q, dA_k, dB_k, dA_v, dB_v) of the q/k/v projections from ctx's saved x2, xa and
    adapters; `wp`, `a_cat` as in lora_group_backward."""
    x2, xa, qA, qB, kA, kB, vA, vB = ctx.saved_tensors[:8]
    grads = [d if d is not None else x2.new_zeros(x2.shape[0], _out_features(f))
             for d, f in zip((dq, dk, dv), ctx.frozen, strict=True)]  # fmt: skip
    dY = torch.cat([g.reshape(x2.shape[0], -1) for g in grads], dim=1)
    dx, dAs, dBs = lora_group_backward(
        dY, x2, xa, (qA, kA, vA), (qB, kB, vB), ctx.frozen, ctx.needs_input_grad, wp=wp, a_cat=a_cat
    )
    lead = next(d for d in (dq, dk, dv) if d is not None).shape[:-1]
    return dx.view(*lead, -1), dAs[0], dBs[0], dAs[1], dBs[1], dAs[2], dBs[2]


@dataclass(eq=False)
class KeptQKV:
    """What the first forward of a checkpointed layer kept for its recompute: q and k rotated in place
    by RoPE (`kernels.ops.rope.rope_`, [B, T, H * D]), v, and the rotation (cos, sin, half, head_dim)."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    half: int
    head_dim: int


class LoRAQKVKeptFunction(torch.autograd.Function):
    """The recompute's q/k/v projections and RoPE when the first forward kept their results: the
    forward returns the kept (rotated) q, k and v, running no GEMM, dequant or rotation (only xa =
    x A^T, which dB needs); the backward takes dq and dk back through the rotation and runs the
    projections' backward, dequantizing the base weights there.  Same values as LoRAQKVFunction
    followed by RoPEInplaceFunction, whose outputs the kept tensors are."""

    @staticmethod
    def forward(ctx, x, qA, qB, kA, kB, vA, vB, frozen, kept: KeptQKV):
        x2 = x.reshape(-1, x.shape[-1])
        a_cat = _a_cat((qA, kA, vA), x2.dtype)
        xa = x2 @ a_cat.t()
        ctx.save_for_backward(x2, xa, qA, qB, kA, kB, vA, vB, kept.cos, kept.sin)
        ctx.frozen, ctx.a_cat, ctx.half, ctx.head_dim = frozen, a_cat, kept.half, kept.head_dim
        return kept.q, kept.k, kept.v

    @staticmethod
    def backward(ctx, dq, dk, dv):
        cos, sin = ctx.saved_tensors[-2:]
        a_cat, ctx.a_cat = ctx.a_cat, None
        dq, dk = rope_backward_(dq, dk, cos, sin, ctx.half, ctx.head_dim)
        return _qkv_backward(ctx, dq, dk, dv, None, a_cat) + (None, None)


def _frozen(p: LoRAProj) -> _Frozen:
    return _Frozen(p.weight, p.bias, float(p.scaling))


def _no_autocast(fn, x, *args):
    """Runs a Function in one dtype: under autocast, x is cast to the autocast dtype first (what the
    stock linear layers would compute in) and autocast is off inside, where the dtypes are explicit."""
    dev = x.device.type
    if not torch.is_autocast_enabled(dev):
        return fn(x, *args)
    with torch.autocast(dev, enabled=False):
        return fn(x.to(torch.get_autocast_dtype(dev)), *args)


def lora_linear(x: torch.Tensor, proj: LoRAProj, output_unused: bool = False) -> torch.Tensor:
    """x W^T + bias + scaling * (x A^T) B^T, with a manual backward (dX, dA, dB).
    output_unused: only the backward matters, the value is a zero (LoRALinearFunction)."""
    return _no_autocast(LoRALinearFunction.apply, x, proj.A, proj.B, _frozen(proj), output_unused)


def lora_qkv(
    x: torch.Tensor, q: LoRAProj, k: LoRAProj, v: LoRAProj
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three attention input projections of x, one autograd node."""
    frozen = (_frozen(q), _frozen(k), _frozen(v))
    return _no_autocast(LoRAQKVFunction.apply, x, q.A, q.B, k.A, k.B, v.A, v.B, frozen)


def lora_qkv_kept(
    x: torch.Tensor, q: LoRAProj, k: LoRAProj, v: LoRAProj, kept: KeptQKV
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """In the recompute of a checkpointed layer: the rotated q, k and v its first forward kept, as
    the outputs of one autograd node that backpropagates through RoPE and the three projections."""
    frozen = (_frozen(q), _frozen(k), _frozen(v))
    return _no_autocast(LoRAQKVKeptFunction.apply, x, q.A, q.B, k.A, k.B, v.A, v.B, frozen, kept)


__all__ = ["KeptQKV", "LoRAProj", "NF4Weight", "lora_linear", "lora_qkv", "lora_qkv_kept"]
