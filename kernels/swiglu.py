"""Gated activations h = act(g) * u for SwiGLU (SiLU) and GeGLU (exact erf or tanh GELU), fwd and bwd.

Knows torch and triton only.  Elementwise over two same-shaped tensors, math in fp32, output in the
input dtype.  The backward can also recompute h in the same pass (the fused LoRA MLP uses that instead
of keeping h from the forward).  It does not know the projections around it: see lora.py.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_float

ACTIVATIONS = {"silu": 0, "gelu": 1, "gelu_tanh": 2}
_BLOCK = 1024


@triton.jit
def _act_and_grad(g, ACT: tl.constexpr):
    """Returns (act(g), act'(g)) in fp32.

    silu:       a = g s,  s = sigmoid(g);            a' = s (1 + g (1 - s))
    gelu:       a = g Phi(g), Phi = (1 + erf(g/sqrt2))/2;   a' = Phi + g exp(-g^2/2) / sqrt(2 pi)
    gelu_tanh:  a = g (1 + t)/2, t = tanh(k (g + 0.044715 g^3)), k = sqrt(2/pi);
                a' = (1 + t)/2 + g (1 - t^2) k (1 + 3 * 0.044715 g^2) / 2
    """
    if ACT == 0:
        s = tl.sigmoid(g)
        return g * s, s * (1.0 + g * (1.0 - s))
    elif ACT == 1:
        phi = 0.5 * (1.0 + tl.math.erf(g * 0.7071067811865476))
        return g * phi, phi + g * tl.exp(-0.5 * g * g) * 0.3989422804014327
    else:
        inner = 0.7978845608028654 * (g + 0.044715 * g * g * g)
        t = 2.0 * tl.sigmoid(2.0 * inner) - 1.0
        a = 0.5 * g * (1.0 + t)
        return a, 0.5 * (1.0 + t) + 0.5 * g * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * g * g)


@triton.jit
def _glu_fwd_kernel(G, U, H, n, ACT: tl.constexpr, BLOCK: tl.constexpr):
    """h = act(g) * u."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    g = tl.load(G + offs, mask=m, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=m, other=0.0).to(tl.float32)
    a, _ = _act_and_grad(g, ACT)
    tl.store(H + offs, (a * u).to(H.dtype.element_ty), mask=m)


@triton.jit
def _glu_bwd_kernel(DH, G, U, DG, DU, H, n, ACT: tl.constexpr, WRITE_H: tl.constexpr, BLOCK: tl.constexpr):
    """dg = dh * u * act'(g);  du = dh * act(g);  optionally h = act(g) * u (recomputed)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    dh = tl.load(DH + offs, mask=m, other=0.0).to(tl.float32)
    g = tl.load(G + offs, mask=m, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=m, other=0.0).to(tl.float32)
    a, da = _act_and_grad(g, ACT)
    if WRITE_H:
        tl.store(H + offs, (a * u).to(H.dtype.element_ty), mask=m)
    tl.store(DG + offs, (dh * u * da).to(DG.dtype.element_ty), mask=m)
    tl.store(DU + offs, (dh * a).to(DU.dtype.element_ty), mask=m)


def _prep(g: torch.Tensor, u: torch.Tensor, activation: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    check_float("gate", g)
    if g.shape != u.shape or g.dtype != u.dtype or g.device != u.device:
        raise ValueError(f"gate {tuple(g.shape)} {g.dtype} and up {tuple(u.shape)} {u.dtype} must match")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    return g.contiguous(), u.contiguous(), ACTIVATIONS[activation]


def glu_forward(g: torch.Tensor, u: torch.Tensor, activation: str) -> torch.Tensor:
    g, u, act = _prep(g, u, activation)
    h = torch.empty_like(g)
    n = g.numel()
    if n:
        _glu_fwd_kernel[(triton.cdiv(n, _BLOCK),)](g, u, h, n, ACT=act, BLOCK=_BLOCK)
    return h


def glu_backward(dh, g, u, activation: str, write_h: bool = False, inplace: bool = False):
    """Returns (dg, du, h or None).  inplace=True writes dg into g's and du into u's memory."""
    g, u, act = _prep(g, u, activation)
    dh = dh.contiguous()
    dg, du = (g, u) if inplace else (torch.empty_like(g), torch.empty_like(u))
    h = torch.empty_like(g) if write_h else dg
    n = g.numel()
    if n:
        _glu_bwd_kernel[(triton.cdiv(n, _BLOCK),)](
            dh, g, u, dg, du, h, n, ACT=act, WRITE_H=write_h, BLOCK=_BLOCK
        )
    return dg, du, (h if write_h else None)


class GLUFunction(torch.autograd.Function):
    """h = act(g) * u; saves g and u."""

    @staticmethod
    def forward(ctx, g, u, activation):
        ctx.save_for_backward(g, u)
        ctx.activation = activation
        return glu_forward(g, u, activation)

    @staticmethod
    def backward(ctx, dh):
        g, u = ctx.saved_tensors
        dg, du, _ = glu_backward(dh, g, u, ctx.activation)
        return dg, du, None


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up."""
    return GLUFunction.apply(gate, up, "silu")


def geglu(gate: torch.Tensor, up: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """gelu(gate) * up; approximate="tanh" for the tanh form (Gemma's gelu_pytorch_tanh)."""
    return GLUFunction.apply(gate, up, "gelu_tanh" if approximate == "tanh" else "gelu")
