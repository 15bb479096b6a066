"""xa = x A^T for a decode batch: the first product of a LoRA adapter, in one launch.

Knows torch and triton only.  peft computes lora_A(x.to(A.dtype)); for a decode batch of a few rows
that is a cast kernel, a cuBLAS GEMM and its split-K reduce - three launches of a few microseconds
each, four times per layer, for a product of a few thousand multiply-adds per row.  Here one kernel
reads x in its own dtype, casts it to A's (exact: 16-bit to fp32), multiplies in fp32 and rounds the
sum to A's dtype, as the GEMM does; only the order of the fp32 additions differs.  K is split over
programs like the NF4 rows kernel's, the last split of a tile adding the partials in a fixed order
(split_k.py).  Used by decoder.Projs with the stacked A of a projection group (q/k/v: R = 3 ranks).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .nf4_rows import ROWS_MAX, split_count, x_at
from .split_k import arrive, tile_counters

BLOCK_R = 8  # adapter ranks per program
BLOCK_K = 64  # inputs per iteration
K_SPLIT = 512  # inputs per program at most on the GPU (more programs in flight)


@triton.jit
def _xa_kernel(
    X, A, XA, PART, COUNT, M, K, R, k_per_split, sxm, sa, sxa, GLU: tl.constexpr,
    SPLIT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Grid (R blocks, SPLIT).  Program (i, s): xa[m, r] over inputs [s k_per_split, (s + 1) k_per_split)
    for ranks r of block i and all rows m:  sum_k float(A.dtype(x[m, k])) * A[r, k]   (fp32).
    GLU: X is [M, 2K] gate | up and x = silu(gate) * up (nf4_rows.x_at)."""
    pid = tl.program_id(0)
    split = tl.program_id(1)
    rr = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    rm = tl.arange(0, BLOCK_M)
    rmask = rr < R
    mmask = rm < M
    acc = tl.zeros((BLOCK_M, BLOCK_R, BLOCK_K), dtype=tl.float32)
    k_start = split * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    for k0 in range(k_start, k_end, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        kmask = rk < K
        x = x_at(X, rm[:, None] * sxm + rk[None, :], mmask[:, None] & kmask[None, :], GLU, K)
        a = tl.load(A + rr[:, None] * sa + rk[None, :], mask=rmask[:, None] & kmask[None, :], other=0.0)
        x = x.to(A.dtype.element_ty).to(tl.float32)
        acc += x[:, None, :] * a.to(tl.float32)[None, :, :]
    y = tl.sum(acc, axis=2)  # [BLOCK_M, BLOCK_R]
    mask = mmask[:, None] & rmask[None, :]
    if SPLIT == 1:
        tl.store(XA + rm[:, None] * sxa + rr[None, :], y.to(XA.dtype.element_ty), mask=mask)
    else:
        tl.store(PART + split * M * R + rm[:, None] * R + rr[None, :], y, mask=mask)
        if arrive(COUNT, pid, SPLIT):
            y = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
            for s in tl.static_range(SPLIT):
                y += tl.load(PART + s * M * R + rm[:, None] * R + rr[None, :], mask=mask, other=0.0,
                             cache_modifier=".cg")  # fmt: skip
            tl.store(XA + rm[:, None] * sxa + rr[None, :], y.to(XA.dtype.element_ty), mask=mask)


def lora_xa(x: torch.Tensor, a: torch.Tensor, glu: bool = False) -> torch.Tensor:
    """x [M <= ROWS_MAX, K] (unit column stride) times a [R, K]^T: [M, R] in a's dtype.  glu: x is
    [M, 2K] gate | up, and silu(gate) * up is multiplied."""
    m, k = x.shape[0], x.shape[1] // 2 if glu else x.shape[1]
    r = a.shape[0]
    if (
        m > ROWS_MAX
        or a.shape != (r, k)
        or x.shape[1] != (2 * k if glu else k)
        or x.stride(1) != 1
        or a.stride(1) != 1
    ):
        raise ValueError(
            f"lora_xa takes x [<= {ROWS_MAX}, K] and a [R, K], got {tuple(x.shape)}, {tuple(a.shape)}"
        )
    xa = torch.empty((m, r), device=x.device, dtype=a.dtype)
    if m == 0 or r == 0:
        return xa
    if x.is_cuda:
        split = max(1, min(triton.cdiv(k, K_SPLIT), split_count(BLOCK_R, k, x.device)))
    else:
        split = 2 if k >= 2 * BLOCK_K else 1  # the tests run the split path
    k_per_split = triton.cdiv(triton.cdiv(k, split), BLOCK_K) * BLOCK_K
    split = triton.cdiv(k, k_per_split)
    grid = (triton.cdiv(r, BLOCK_R), split)
    part = torch.empty((split, m, r), device=x.device, dtype=torch.float32) if split > 1 else xa
    count = tile_counters(x.device, grid[0]) if split > 1 else xa
    _xa_kernel[grid](
        x, a, xa, part, count, m, k, r, k_per_split, x.stride(0), a.stride(0), xa.stride(0), GLU=glu,
        SPLIT=split, BLOCK_M=triton.next_power_of_2(m), BLOCK_R=BLOCK_R, BLOCK_K=BLOCK_K,
    )  # fmt: skip
    return xa


__all__ = ["lora_xa"]
