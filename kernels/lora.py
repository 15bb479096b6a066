"""LoRA projections with a hand-written backward: one projection, attention q/k/v, and the MLP block.

Knows torch and triton only.  Each projection is  y = x W^T (+ bias) + s (x A^T) B^T  with the frozen
base W either a dense tensor or an `NF4Weight`, dequantized on the fly (forward and backward) and never
kept.  Gradients: dX, dA and dB only (W and the bias are frozen).  Matmuls run in x's dtype through
cuBLAS; A and B are cast to it and their gradients cast back.  It does not know peft: kernels.patch
reads A, B, scaling, W and bias out of peft's modules.  No dropout on the LoRA path (peft's dropout
must be the identity; patch leaves modules with dropout stock).

Chain rule for one projection, with xa = x A^T [N, r] and dy = dL/dy [N, out]:
    dB = s dy^T xa          [out, r]
    dya = s dy B            [N, r]
    dA = dya^T x            [r, in]
    dX = dy W + dya A       [N, in]
MLP block: g = proj_gate(x), u = proj_up(x), h = act(g) * u, y = proj_down(h).  Saved: x, g, u.
Backward recomputes h together with dg, du (one Triton pass, in g's and u's memory), then applies
the rule above to down (input h), gate and up (input x), summing both dX.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .nf4 import NF4Weight, dense_weight
from .swiglu import glu_backward, glu_forward


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


def proj_forward(x2: torch.Tensor, A: torch.Tensor, B: torch.Tensor, f: _Frozen) -> torch.Tensor:
    """y = x W^T + bias + s (x A^T) B^T for x2 [N, in]."""
    y = x2 @ _w(f, x2.dtype).t()
    if f.bias is not None:
        y += f.bias.to(y.dtype)
    xa = x2 @ A.to(x2.dtype).t()
    return y.addmm_(xa, B.to(x2.dtype).t(), alpha=f.scaling)


def proj_backward(dy, x2, A, B, f: _Frozen, dx=None, need=(True, True, True)):
    """Returns (dx, dA, dB) for one projection; dx is accumulated into `dx` when given."""
    dt = x2.dtype
    a, b = A.to(dt), B.to(dt)
    dya = (dy @ b).mul_(f.scaling)  # [N, r]
    dA = (dya.t() @ x2).to(A.dtype) if need[1] else None
    dB = (dy.t() @ (x2 @ a.t())).mul_(f.scaling).to(B.dtype) if need[2] else None
    if need[0]:
        w = _w(f, dt)
        dx = dy @ w if dx is None else dx.addmm_(dy, w)
        dx.addmm_(dya, a)
    return dx, dA, dB


class LoRALinearFunction(torch.autograd.Function):
    """One projection; saves x, A, B."""

    @staticmethod
    def forward(ctx, x, A, B, frozen):
        x2 = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(x2, A, B)
        ctx.frozen = frozen
        return proj_forward(x2, A, B, frozen).view(*x.shape[:-1], -1)

    @staticmethod
    def backward(ctx, dy):
        x2, A, B = ctx.saved_tensors
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx, dA, dB = proj_backward(dy2, x2, A, B, ctx.frozen, need=ctx.needs_input_grad[:3])
        return (None if dx is None else dx.view(*dy.shape[:-1], -1)), dA, dB, None


class LoRAQKVFunction(torch.autograd.Function):
    """q, k, v projections of one input; saves x and the six adapter matrices."""

    @staticmethod
    def forward(ctx, x, qA, qB, kA, kB, vA, vB, frozen):
        x2 = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(x2, qA, qB, kA, kB, vA, vB)
        ctx.frozen = frozen
        pairs = ((qA, qB), (kA, kB), (vA, vB))
        return tuple(
            proj_forward(x2, a, b, f).view(*x.shape[:-1], -1)
            for (a, b), f in zip(pairs, frozen, strict=False)
        )

    @staticmethod
    def backward(ctx, dq, dk, dv):
        x2, *ab = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        dx, grads = None, []
        for i, d in enumerate((dq, dk, dv)):
            if d is None:
                grads += [None, None]
                continue
            need = (need_x, ctx.needs_input_grad[1 + 2 * i], ctx.needs_input_grad[2 + 2 * i])
            d2 = d.reshape(-1, d.shape[-1])
            dx, dA, dB = proj_backward(d2, x2, ab[2 * i], ab[2 * i + 1], ctx.frozen[i], dx, need)
            grads += [dA, dB]
        lead = dq.shape[:-1] if dq is not None else (dk if dk is not None else dv).shape[:-1]
        return (None if dx is None else dx.view(*lead, -1)), *grads, None


class LoRAMLPFunction(torch.autograd.Function):
    """down(act(gate(x)) * up(x)); saves x, g, u and the six adapter matrices."""

    @staticmethod
    def forward(ctx, x, gA, gB, uA, uB, dA, dB, frozen, activation):
        x2 = x.reshape(-1, x.shape[-1])
        g = proj_forward(x2, gA, gB, frozen[0])
        u = proj_forward(x2, uA, uB, frozen[1])
        h = glu_forward(g, u, activation)
        y = proj_forward(h, dA, dB, frozen[2])
        ctx.save_for_backward(x2, g, u, gA, gB, uA, uB, dA, dB)
        ctx.frozen, ctx.activation = frozen, activation
        return y.view(*x.shape[:-1], -1)

    @staticmethod
    def backward(ctx, dy):
        x2, g, u, gA, gB, uA, uB, dA, dB = ctx.saved_tensors
        fg, fu, fd = ctx.frozen
        ng = ctx.needs_input_grad
        dy2 = dy.reshape(-1, dy.shape[-1])
        h = glu_forward(g, u, ctx.activation)
        dh, d_dA, d_dB = proj_backward(dy2, h, dA, dB, fd, need=(True, ng[5], ng[6]))
        del h
        dg, du, _ = glu_backward(dh, g, u, ctx.activation, inplace=True)  # dg, du over g, u
        del dh
        dx, d_gA, d_gB = proj_backward(dg, x2, gA, gB, fg, need=(ng[0], ng[1], ng[2]))
        dx, d_uA, d_uB = proj_backward(du, x2, uA, uB, fu, dx, need=(ng[0], ng[3], ng[4]))
        dx = None if dx is None else dx.view(*dy.shape[:-1], -1)
        return dx, d_gA, d_gB, d_uA, d_uB, d_dA, d_dB, None, None


def _frozen(p: LoRAProj) -> _Frozen:
    return _Frozen(p.weight, p.bias, float(p.scaling))


def lora_linear(x: torch.Tensor, proj: LoRAProj) -> torch.Tensor:
    """x W^T + bias + scaling * (x A^T) B^T, with a manual backward (dX, dA, dB)."""
    return LoRALinearFunction.apply(x, proj.A, proj.B, _frozen(proj))


def lora_qkv(
    x: torch.Tensor, q: LoRAProj, k: LoRAProj, v: LoRAProj
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three attention input projections of x, one autograd node."""
    frozen = (_frozen(q), _frozen(k), _frozen(v))
    return LoRAQKVFunction.apply(x, q.A, q.B, k.A, k.B, v.A, v.B, frozen)


def lora_mlp(x: torch.Tensor, gate: LoRAProj, up: LoRAProj, down: LoRAProj, activation: str = "silu"):
    """down(act(gate(x)) * up(x)) with activation in {"silu", "gelu", "gelu_tanh"}."""
    frozen = (_frozen(gate), _frozen(up), _frozen(down))
    return LoRAMLPFunction.apply(x, gate.A, gate.B, up.A, up.B, down.A, down.B, frozen, activation)


__all__ = ["LoRAProj", "NF4Weight", "lora_linear", "lora_mlp", "lora_qkv"]
