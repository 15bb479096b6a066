"""Gated activations h = act(g) * u for SwiGLU (SiLU) and GeGLU (exact erf or tanh GELU), fwd and bwd.

Knows torch and triton only.  Elementwise over two same-shaped tensors, math in fp32, output in the
input dtype.  The backward can also recompute h in the same pass (the fused LoRA MLP uses that instead
of keeping h from the forward).  It does not know the projections around it: see lora.py.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._launch import check_float

ACTIVATIONS = {"silu": 0, "gelu": 1, "gelu_tanh": 2}
_BLOCK = 1024


@triton.jit
def act_and_grad(g, ACT: tl.constexpr):
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
def swiglu_at(X, offs, mask, up_offset):
    """silu(g) * u in X's dtype for elements `offs` of a [g | u] row (u at offs + up_offset): the value
    _glu_fwd_kernel stores, for a kernel that reads a SwiGLU output where it would read its input."""
    g = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(X + offs + up_offset, mask=mask, other=0.0).to(tl.float32)
    a, _ = act_and_grad(g, 0)
    return (a * u).to(X.dtype.element_ty)


@triton.jit
def _glu_fwd_kernel(G, U, H, sg, su, sh, cols, ACT: tl.constexpr, BLOCK: tl.constexpr):
    """h = act(g) * u, one row block per program (row strides sg, su, sh; unit column stride)."""
    row = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = c < cols
    g = tl.load(G + row * sg + c, mask=m, other=0.0).to(tl.float32)
    u = tl.load(U + row * su + c, mask=m, other=0.0).to(tl.float32)
    a, _ = act_and_grad(g, ACT)
    tl.store(H + row * sh + c, (a * u).to(H.dtype.element_ty), mask=m)


@triton.jit
def _glu_bwd_kernel(DH, G, U, DG, DU, H, sdh, sg, su, sdg, sdu, sh, cols,
                    ACT: tl.constexpr, WRITE_H: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """dg = dh * u * act'(g);  du = dh * act(g);  optionally h = act(g) * u (recomputed)."""
    row = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = c < cols
    dh = tl.load(DH + row * sdh + c, mask=m, other=0.0).to(tl.float32)
    g = tl.load(G + row * sg + c, mask=m, other=0.0).to(tl.float32)
    u = tl.load(U + row * su + c, mask=m, other=0.0).to(tl.float32)
    a, da = act_and_grad(g, ACT)
    if WRITE_H:
        tl.store(H + row * sh + c, (a * u).to(H.dtype.element_ty), mask=m)
    tl.store(DG + row * sdg + c, (dh * u * da).to(DG.dtype.element_ty), mask=m)
    tl.store(DU + row * sdu + c, (dh * a).to(DU.dtype.element_ty), mask=m)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """[rows, cols] view with unit column stride (a copy only when the layout needs one)."""
    t2 = t.reshape(-1, t.shape[-1]) if t.dim() != 2 else t
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


def _prep(g: torch.Tensor, u: torch.Tensor, activation: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    check_float("gate", g)
    if g.shape != u.shape or g.dtype != u.dtype or g.device != u.device:
        raise ValueError(f"gate {tuple(g.shape)} {g.dtype} and up {tuple(u.shape)} {u.dtype} must match")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    return _rows(g), _rows(u), ACTIVATIONS[activation]


def glu_forward(g: torch.Tensor, u: torch.Tensor, activation: str) -> torch.Tensor:
    """act(g) * u; g and u may be row-strided views (e.g. the halves of one [N, 2I] matmul output)."""
    shape = g.shape
    g, u, act = _prep(g, u, activation)
    h = torch.empty(g.shape, device=g.device, dtype=g.dtype)
    rows, cols = g.shape
    if g.numel():
        grid = (rows, triton.cdiv(cols, _BLOCK))
        _glu_fwd_kernel[grid](g, u, h, g.stride(0), u.stride(0), h.stride(0), cols, ACT=act, BLOCK=_BLOCK)
    return h.view(shape)


def glu_backward(dh, g, u, activation: str, write_h: bool = False, inplace: bool = False, h_into_dh=False):
    """Returns (dg, du, h or None).  inplace=True writes dg into g's and du into u's memory;
    h_into_dh=True (implies write_h) writes h into dh's memory, which the kernel reads element by
    element before writing the same element (no buffer for h: the fused MLP's backward)."""
    shape = g.shape
    g2, u2, act = _prep(g, u, activation)
    if inplace and (g2.data_ptr() != g.data_ptr() or u2.data_ptr() != u.data_ptr()):
        raise ValueError("inplace needs g and u with unit column stride")
    dh2 = _rows(dh)
    if h_into_dh and (dh2.data_ptr() != dh.data_ptr() or dh2.shape != g2.shape or dh.dtype != g.dtype):
        raise ValueError("h_into_dh needs dh of g's shape and dtype with unit column stride")
    write_h = write_h or h_into_dh

    def new():
        return torch.empty(g2.shape, device=g.device, dtype=g.dtype)

    dg, du = (g2, u2) if inplace else (new(), new())
    h = (dh2 if h_into_dh else new()) if write_h else dg
    rows, cols = g2.shape
    if g2.numel():
        _glu_bwd_kernel[(rows, triton.cdiv(cols, _BLOCK))](
            dh2, g2, u2, dg, du, h, dh2.stride(0), g2.stride(0), u2.stride(0), dg.stride(0), du.stride(0),
            h.stride(0), cols, ACT=act, WRITE_H=write_h, BLOCK=_BLOCK,
        )  # fmt: skip
    if inplace:
        return g, u, (h.view(shape) if write_h else None)
    return dg.view(shape), du.view(shape), (h.view(shape) if write_h else None)


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
