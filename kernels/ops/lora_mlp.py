"""The gated MLP block with LoRA on gate, up and down, and a hand-written backward: down(act(gate(x)) * up(x)).

Knows torch and triton only (kernels.patch hands it peft's adapters as ops.lora.LoRAProj).  gate and up
share x: one matmul `[x | s xa] @ [W_g ; W_u | B]^T` gives `[g | u]` (ops.lora.lora_group_forward).  Its
backward forms `dh = [dy | s dy B_d] @ [W_d ; A_d]`, then `dg, du` in one Triton pass in the memory of
`g` and `u` (ops.glu), then the gate/up projections' backward.

Over sequence tiles: `[g | u]` is 2 x intermediate wide (28,672 for an 8B model: 7 times the hidden
size), the largest activation of a layer.  When it would pass MLP_TILE_BYTES, the block runs over row
tiles instead, so only one tile's `[g | u]` and `dh` exist: the forward writes each tile's output into
y; the backward recomputes each tile's `[g | u]` from the saved x (the only extra work: the gate/up
GEMM once more, and none in the lean recompute, which then skips it in the forward) and sums the
adapters' gradients over tiles in fp32.  Every row's value is the untiled one's (the MLP is row-wise);
the adapters' gradients are sums over rows grouped by tile, the same to rounding.  Inside the lean
recompute of a checkpointed layer (memory.offload.recomputing()) whose caller only adds the output to
the residual (`residual_out`), the down projection is skipped (its output is a zero of its shape) and
the dequantized weights are kept for the backward of the same call.  kernels/DESIGN.md says why.
"""

from __future__ import annotations

import torch

from ..memory.offload import recomputing
from .glu import glu_backward, glu_forward
from .lora import (
    LoRAProj,
    _a_cat,
    _Frozen,
    _frozen,
    _no_autocast,
    _out_features,
    _w,
    group_weight,
    lora_group_backward,
    lora_group_forward,
    lora_linear_forward,
    stacked_weight,
)

# The most [g | u] may take at once (bytes) before the block runs over row tiles: 512 MiB keeps batch 1 x
# 8,192 tokens of an 8B model (448 MiB) in one piece, at today's speed, and caps longer rows' working set.
# core/context_plan.py's arithmetic reads the same number (tests/core/test_context_plan.py checks it).
MLP_TILE_BYTES = 1 << 29
_ROW_ALIGN = 128  # tiles of a multiple of 128 rows keep every GEMM's row blocks whole


def tile_rows(n_rows: int, intermediate: int, element_size: int) -> int:
    """Rows per tile for `n_rows` rows whose [g | u] is 2 x `intermediate` wide: all of them when that fits
    MLP_TILE_BYTES, else the most that do (a multiple of 128 where that is at least 128)."""
    per_row = 2 * intermediate * element_size
    if n_rows * per_row <= MLP_TILE_BYTES:
        return max(1, n_rows)
    rows = max(1, MLP_TILE_BYTES // per_row)
    return rows // _ROW_ALIGN * _ROW_ALIGN if rows >= _ROW_ALIGN else rows


def _down_weight(fd: _Frozen, dA: torch.Tensor, dt: torch.dtype, inter: int, device) -> torch.Tensor:
    """[W_d ; A_d]: dh = [dy | dya_d] @ this (A_d copied into the rows below W_d)."""
    r = dA.shape[0]
    wd = stacked_weight((fd,), inter, 0, dt, device, extra_rows=r)
    wd.narrow(0, wd.shape[0] - r, r).copy_(dA)
    return wd


class LoRAMLPFunction(torch.autograd.Function):
    """down(act(gate(x)) * up(x)); untiled it saves x, [g | u], xa (gate/up) and xa (down), tiled only x.

    In a recompute with `residual_out` (module docstring) the down projection is skipped: xa_d is saved
    as None (the backward forms it from its own h) and the output is a zero of y's shape.
    """

    @staticmethod
    def forward(ctx, x, gA, gB, uA, uB, dA, dB, frozen, activation, residual_out=False):
        x2 = x.reshape(-1, x.shape[-1])
        lean = recomputing()
        inter = _out_features(frozen[0])
        ctx.frozen, ctx.activation = frozen, activation
        ctx.rows = tile_rows(x2.shape[0], inter, x2.element_size())
        if ctx.rows < x2.shape[0]:
            return _tiled_forward(ctx, x, x2, (gA, gB, uA, uB, dA, dB), lean and residual_out, lean)
        gu, xa, wp, a_cat = lora_group_forward(x2, (gA, uA), (gB, uB), frozen[:2])  # [N, 2I]
        ctx.wp, ctx.a_cat = (wp, a_cat) if lean else (None, None)
        del wp  # outside a recompute, freed before down's weight is dequantized
        if lean and residual_out:  # nothing reads y: the layer adds it to the residual and returns
            xa_d = None
            y = x2.new_zeros(()).expand(*x.shape[:-1], _out_features(frozen[2]))
        else:
            h = glu_forward(gu.narrow(1, 0, inter), gu.narrow(1, inter, gu.shape[1] - inter), activation)
            y, xa_d = lora_linear_forward(h, dA, dB, frozen[2], return_xa=True)
            y = y.view(*x.shape[:-1], -1)
        ctx.save_for_backward(x2, gu, xa, xa_d, gA, gB, uA, uB, dA, dB)
        return y

    @staticmethod
    def backward(ctx, dy):
        if ctx.rows < ctx.saved_tensors[0].shape[0]:
            return _tiled_backward(ctx, dy)
        x2, gu, xa, xa_d, gA, gB, uA, uB, dA, dB = ctx.saved_tensors
        wp, a_cat, ctx.wp, ctx.a_cat = ctx.wp, ctx.a_cat, None, None
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx, grads = _rows_backward(ctx, dy2, x2, gu, xa, xa_d, wp, a_cat, None)
        return (dx.view(*dy.shape[:-1], -1), *grads, None, None, None)


def _rows_backward(ctx, dy2, x2, gu, xa, xa_d, wp, a_cat, wd):
    """dx and (dA_g, dB_g, dA_u, dB_u, dA_d, dB_d) of rows x2 from their dy2, [g | u] (overwritten) and
    xa; `wd`: _down_weight's [W_d ; A_d] when the caller holds it (else made and dropped here)."""
    gA, gB, uA, uB, dA, dB = ctx.saved_tensors[-6:]
    fg, fu, fd = ctx.frozen
    ng, dt = ctx.needs_input_grad, x2.dtype
    inter = _out_features(fg)
    g, u = gu.narrow(1, 0, inter), gu.narrow(1, inter, gu.shape[1] - inter)
    dya_d = (dy2 @ dB.to(dt)).mul_(fd.scaling)  # [N, r]

    def down_grads(h, xa_d):
        if xa_d is None:  # the recompute skipped the down projection: xa_d = h A_d^T, from this h
            xa_d = h @ dA.to(dt).t()
        d_dB = (dy2.t() @ xa_d).mul_(fd.scaling).to(dB.dtype) if ng[6] else None
        d_dA = (dya_d.t() @ h).to(dA.dtype) if ng[5] else None
        return d_dA, d_dB

    # SiLU: h comes out of the GLU backward's own pass, written over dh as it is read (one launch
    # and one read of g, u fewer; h = silu(g) * u by the same float ops as glu_forward: no
    # multiply-add to contract).  The GELU forms keep h from glu_forward, before dh exists.
    fused_h = ctx.activation == "silu"
    if not fused_h:
        d_dA, d_dB = down_grads(glu_forward(g, u, ctx.activation), xa_d)
    # dh = dy W_d + dya_d A_d = [dy | dya_d] @ [W_d ; A_d]
    dh = torch.cat([dy2, dya_d], dim=1) @ (_down_weight(fd, dA, dt, inter, x2.device) if wd is None else wd)
    # gu now holds [dg | du] (and dh holds h when fused_h)
    glu_backward(dh, g, u, ctx.activation, inplace=True, h_into_dh=fused_h)
    if fused_h:
        d_dA, d_dB = down_grads(dh, xa_d)
    del dh, xa_d
    dx, dAs, dBs = lora_group_backward(gu, x2, xa, (gA, uA), (gB, uB), (fg, fu), ng, wp=wp, a_cat=a_cat)
    return dx, (dAs[0], dBs[0], dAs[1], dBs[1], d_dA, d_dB)


def _tiles(n: int, rows: int):
    return ((s, min(rows, n - s)) for s in range(0, n, rows))


def _tiled_forward(ctx, x, x2, adapters, skip_output: bool, lean: bool):
    """The forward over row tiles (module docstring): saves x2 only; y is written tile by tile, or is a
    zero when nothing reads it (the lean recompute: then no GEMM runs here at all)."""
    gA, gB, uA, uB, dA, dB = adapters
    frozen, inter = ctx.frozen, _out_features(ctx.frozen[0])
    ctx.save_for_backward(x2, gA, gB, uA, uB, dA, dB)
    wp = group_weight(frozen[:2], (gB, uB), x2.shape[1], x2.dtype, x2.device)
    ctx.wp = wp if lean else None  # the recompute's dequantized gate/up weight, for its backward
    if skip_output:
        return x2.new_zeros(()).expand(*x.shape[:-1], _out_features(frozen[2]))
    a_cat = _a_cat((gA, uA), x2.dtype)
    wd = _w(frozen[2], x2.dtype)  # dequantized once for all tiles
    y = x2.new_empty(x2.shape[0], _out_features(frozen[2]))
    for start, rows in _tiles(x2.shape[0], ctx.rows):
        gu, _, _, _ = lora_group_forward(x2.narrow(0, start, rows), (gA, uA), (gB, uB), frozen[:2], wp, a_cat)
        h = glu_forward(gu.narrow(1, 0, inter), gu.narrow(1, inter, inter), ctx.activation)
        del gu
        y.narrow(0, start, rows).copy_(lora_linear_forward(h, dA, dB, frozen[2], w=wd))
    return y.view(*x.shape[:-1], -1)


def _tiled_backward(ctx, dy):
    """The backward over row tiles: each tile's [g | u] formed again from x2, its rows' dx written into
    one dx, the adapters' gradients summed over tiles in fp32 (module docstring)."""
    x2, gA, gB, uA, uB, dA, dB = ctx.saved_tensors
    dt, n = x2.dtype, x2.shape[0]
    wp, ctx.wp = ctx.wp, None
    if wp is None:
        wp = group_weight(ctx.frozen[:2], (gB, uB), x2.shape[1], dt, x2.device)
    a_cat = _a_cat((gA, uA), dt)
    wd = _down_weight(ctx.frozen[2], dA, dt, _out_features(ctx.frozen[0]), x2.device)
    dy2 = dy.reshape(-1, dy.shape[-1])
    dx = x2.new_empty(x2.shape)
    sums: list[torch.Tensor | None] = [None] * 6
    for start, rows in _tiles(n, ctx.rows):
        x_t = x2.narrow(0, start, rows)
        gu, xa, _, _ = lora_group_forward(x_t, (gA, uA), (gB, uB), ctx.frozen[:2], wp, a_cat)
        dx_t, grads = _rows_backward(ctx, dy2.narrow(0, start, rows), x_t, gu, xa, None, wp, a_cat, wd)
        dx.narrow(0, start, rows).copy_(dx_t)
        del gu, dx_t
        for i, g in enumerate(grads):
            if g is not None:
                total = sums[i]
                sums[i] = g.float() if total is None else total.add_(g)
    adapters = (gA, gB, uA, uB, dA, dB)
    grads = tuple(None if s is None else s.to(p.dtype) for s, p in zip(sums, adapters, strict=True))
    return (dx.view(*dy.shape[:-1], -1), *grads, None, None, None)


def lora_mlp(
    x: torch.Tensor,
    gate: LoRAProj,
    up: LoRAProj,
    down: LoRAProj,
    activation: str = "silu",
    residual_out: bool = False,
):
    """down(act(gate(x)) * up(x)) with activation in {"silu", "gelu", "gelu_tanh"}.

    residual_out: the caller only adds the result to the residual stream and returns the sum from a
    checkpointed layer, so the recompute of that layer may skip the down projection (module docstring).
    """
    frozen = (_frozen(gate), _frozen(up), _frozen(down))
    return _no_autocast(
        LoRAMLPFunction.apply, x, gate.A, gate.B, up.A, up.B, down.A, down.B, frozen, activation,
        residual_out,
    )  # fmt: skip


__all__ = ["MLP_TILE_BYTES", "lora_mlp", "tile_rows"]
