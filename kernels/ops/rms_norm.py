"""RMSNorm (plain and Gemma's (1 + w) form) and fused residual-add + RMSNorm, forward and backward.

Knows torch and triton only.  Works on the last dimension of any tensor; statistics in fp32, output
in the input's dtype.  It does not know which model calls it: the caller says whether the weight is
used as `w` (Llama, Mistral, Qwen) or `1 + w` (Gemma) through `offset`.  The weight gradient is only
computed when the weight requires grad (frozen in LoRA training, so usually skipped).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._launch import as_rows, check_float, check_same_device, n_programs, row_block, warps_for


@triton.jit
def _rms_fwd_kernel(X, R, H, Y, W, RSTD, n_cols, eps, offset, HAS_RES: tl.constexpr, BLOCK: tl.constexpr):
    """One row:  h = x (+ r);  rstd = 1 / sqrt(mean(h^2) + eps);  y = h * rstd * (w + offset).

    Writes h (when a residual is added), y and rstd (fp32, kept for the backward).
    """
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    h = tl.load(X + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    if HAS_RES:
        h += tl.load(R + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(H + row * n_cols + cols, h.to(H.dtype.element_ty), mask=mask)
    rstd = 1.0 / tl.sqrt(tl.sum(h * h, axis=0) / n_cols + eps)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32) + offset
    tl.store(Y + row * n_cols + cols, (h * rstd * w).to(Y.dtype.element_ty), mask=mask)
    tl.store(RSTD + row, rstd)


@triton.jit
def _rms_bwd_kernel(
    DY, H, W, RSTD, DH_IN, DX, DW, n_rows, n_cols, offset,
    HAS_DH: tl.constexpr, WANT_DW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Rows start, start + P, ...:  with hat = h * rstd and g = dy * (w + offset),

    dh = rstd * (g - hat * mean(g * hat))  (+ dh_in, the gradient reaching h directly),
    dw = sum over rows of dy * hat  (a partial sum per program, reduced by the launcher).
    """
    pid = tl.program_id(0)
    n_prog = tl.num_programs(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32) + offset
    dw = tl.zeros([BLOCK], dtype=tl.float32)
    for row in range(pid.to(tl.int64), n_rows, n_prog):
        base = row * n_cols
        dy = tl.load(DY + base + cols, mask=mask, other=0.0).to(tl.float32)
        h = tl.load(H + base + cols, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + row)
        hat = h * rstd
        g = dy * w
        dh = rstd * (g - hat * (tl.sum(g * hat, axis=0) / n_cols))
        if HAS_DH:
            dh += tl.load(DH_IN + base + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(DX + base + cols, dh.to(DX.dtype.element_ty), mask=mask)
        if WANT_DW:
            dw += dy * hat
    if WANT_DW:
        tl.store(DW + pid * n_cols + cols, dw, mask=mask)


def rms_norm_forward(x, weight, eps, offset, residual=None):
    """Returns (y, h, rstd) for rows of x (h is x + residual, or x itself without a residual)."""
    check_float("x", x)
    check_same_device(x=x, weight=weight, residual=residual)
    n_cols = x.shape[-1]
    if weight.shape != (n_cols,):
        raise ValueError(f"weight shape {tuple(weight.shape)} does not match the last dim {n_cols}")
    x2 = as_rows(x)
    r2 = None if residual is None else as_rows(residual.expand_as(x))
    # outputs allocated in x's shape, so the Functions return tensors that are not views (a later op
    # may then work on them in place: the in-place RoPE after Qwen3's q/k norms)
    y = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    h = torch.empty(x.shape, device=x.device, dtype=x.dtype) if r2 is not None else x2.view(x.shape)
    h2 = h.view(x2.shape)
    y2 = y.view(x2.shape)
    rstd = torch.empty(x2.shape[0], device=x.device, dtype=torch.float32)
    block = row_block(n_cols, "rms_norm")
    if x2.shape[0] > 0:
        _rms_fwd_kernel[(x2.shape[0],)](
            x2, r2 if r2 is not None else x2, h2, y2, weight, rstd, n_cols, eps, offset,
            HAS_RES=r2 is not None, BLOCK=block, num_warps=warps_for(block),
        )  # fmt: skip
    return y, h, rstd


def rms_norm_backward(dy, h, weight, rstd, offset, dh_in=None, want_dw=False):
    """Returns (dh, dw or None) for the forward above."""
    n_cols = h.shape[-1]
    dy2, h2 = as_rows(dy), as_rows(h)
    dh_in2 = None if dh_in is None else as_rows(dh_in)
    n_rows = h2.shape[0]
    dx = torch.empty_like(h2)
    progs = n_programs(h.device, n_rows)
    dw_part = torch.empty((progs, n_cols), device=h.device, dtype=torch.float32) if want_dw else rstd
    block = row_block(n_cols, "rms_norm")
    if n_rows > 0:
        _rms_bwd_kernel[(progs,)](
            dy2, h2, weight, rstd, dh_in2 if dh_in2 is not None else dy2, dx, dw_part, n_rows, n_cols,
            offset, HAS_DH=dh_in2 is not None, WANT_DW=want_dw, BLOCK=block, num_warps=warps_for(block),
        )  # fmt: skip
    dw = dw_part.sum(0).to(weight.dtype) if want_dw else None
    return dx.view(h.shape), dw


class RMSNormFunction(torch.autograd.Function):
    """y = rms_norm(x) * (w + offset); saves h (= x) and rstd."""

    @staticmethod
    def forward(ctx, x, weight, eps, offset):
        y, h, rstd = rms_norm_forward(x, weight, eps, offset)
        ctx.save_for_backward(h, weight, rstd)
        ctx.offset = offset
        return y

    @staticmethod
    def backward(ctx, dy):
        h, weight, rstd = ctx.saved_tensors
        dx, dw = rms_norm_backward(dy, h, weight, rstd, ctx.offset, want_dw=ctx.needs_input_grad[1])
        return dx, dw, None, None


class AddRMSNormFunction(torch.autograd.Function):
    """h = x + residual; y = rms_norm(h) * (w + offset); returns (y, h); saves h and rstd."""

    @staticmethod
    def forward(ctx, x, residual, weight, eps, offset):
        y, h, rstd = rms_norm_forward(x, weight, eps, offset, residual=residual)
        ctx.save_for_backward(h, weight, rstd)
        ctx.offset = offset
        return y, h

    @staticmethod
    def backward(ctx, dy, dh):
        h, weight, rstd = ctx.saved_tensors
        want_dw = ctx.needs_input_grad[2]
        dx, dw = rms_norm_backward(dy, h, weight, rstd, ctx.offset, dh_in=dh, want_dw=want_dw)
        return dx, dx, dw, None, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, offset: float = 0.0) -> torch.Tensor:
    """RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * (weight + offset); offset=1 for Gemma."""
    return RMSNormFunction.apply(x, weight, float(eps), float(offset))


def add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused h = x + residual and y = rms_norm(h); returns (y, h), h being the new residual stream."""
    return AddRMSNormFunction.apply(x, residual, weight, float(eps), float(offset))
