"""y = x @ dequant(W)^T for a few rows of x (a decode batch), straight from the 4-bit NF4 weight.

Knows torch and triton only.  The weight is a `kernels.ops.nf4.NF4Weight` (bitsandbytes' layout, double
quantized or not; the dequant math is nf4.py's: code[nibble] * absmax, absmax itself decoded from code2,
absmax2 and offset when nested).  Each program dequantizes a [BLOCK_N, BLOCK_K] tile of W into
registers and multiplies it with the x rows; the bf16 weight is never written to memory, so a decode
step reads 0.5 byte per weight instead of 2 (dequantize) + 2 (write) + 2 (read for the matmul).  It
does not know LoRA or models: the caller passes the adapter's contribution as `add`.

Rounding mirrors "dequantize to w.dtype, then F.linear, then + add" as bitsandbytes + peft compute it:
the tile is cast to x's dtype before the dot (fp32 accumulation),
    y = round(round(x W^T + bias) + add)      (round = cast to the output dtype)
For fp32 inputs the dot runs in IEEE fp32 (no TF32); under the CPU interpreter, whose bf16 dot is
wrong, the rounded bf16 tile is multiplied in fp32 (the same exact products a bf16 MMA forms).  Meant for M <= 64 rows: every program reads its
weight tile once and multiplies all rows; large M is a job for dequantize + cuBLAS.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._launch import autotune_cache_kwargs
from ..ops.nf4 import NF4Weight, _nf4_values
from .nf4_rows import ROWS_MAX, check_lora, rows_matmul

MAX_ROWS = 64
_CACHE_RESULTS = autotune_cache_kwargs()


@triton.jit
def _store(acc, BIAS, ADD, Y, rn, rm, nmask, mmask, sam, sym, HAS_BIAS: tl.constexpr, HAS_ADD: tl.constexpr):
    """y[m, n] = round(round(acc[n, m] + bias[n]) + add[m, n]), stored: both kernels end this way."""
    if HAS_BIAS:
        acc += tl.load(BIAS + rn, mask=nmask, other=0.0).to(tl.float32)[:, None]
    y = acc.to(Y.dtype.element_ty)
    omask = nmask[:, None] & mmask[None, :]
    if HAS_ADD:
        add = tl.load(ADD + rm[None, :] * sam + rn[:, None], mask=omask, other=0.0)
        y = (y.to(tl.float32) + add.to(tl.float32)).to(Y.dtype.element_ty)
    tl.store(Y + rm[None, :] * sym + rn[:, None], y, mask=omask)


@triton.jit
def _nf4_mm_kernel(
    X, PACKED, ABSMAX, CODE, ABSMAX2, CODE2, BIAS, ADD, Y, M, N, K, sxm, sam, sym, blocksize, blocksize2,
    offset, NESTED: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_ADD: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Grid (N blocks,).  For output columns n of this block and all rows m (BLOCK_M >= M):

    j       = n * K + k                     (flat index of W[n, k])
    nib     = packed[j // 2] >> 4  if j even  else  packed[j // 2] & 15
    a       = code2[absmax[j // bs]] * absmax2[j // bs // bs2] + offset   (nested)  or  absmax[j // bs]
    W[n, k] = code[nib] * a          (fp32, cast to x's dtype)
    acc[n, m] = sum_k W[n, k] x[m, k]    (fp32; computed transposed so BLOCK_N is the dot's M side)
    y[m, n] = round(round(acc + bias[n]) + add[m, n])
    """
    pid = tl.program_id(0)
    rn = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    rm = tl.arange(0, BLOCK_M)
    nmask = rn < N
    mmask = rm < M
    row0 = rn.to(tl.int64)[:, None] * K
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        kmask = rk < K
        wmask = nmask[:, None] & kmask[None, :]
        j = row0 + rk[None, :]
        w = _nf4_values(PACKED, ABSMAX, CODE, ABSMAX2, CODE2, offset, j, wmask, blocksize, blocksize2, NESTED)
        x = tl.load(X + rm[None, :] * sxm + rk[:, None], mask=kmask[:, None] & mmask[None, :], other=0.0)
        if IEEE:  # fp32, or the CPU interpreter (its bf16 dot is wrong): exact products of the rounded tile
            acc += tl.dot(w.to(x.dtype).to(tl.float32), x.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(w.to(x.dtype), x)
    _store(acc, BIAS, ADD, Y, rn, rm, nmask, mmask, sam, sym, HAS_BIAS, HAS_ADD)


@triton.jit
def _nf4_mm_aligned_kernel(
    X, PACKED, ABSMAX, CODE, ABSMAX2, CODE2, BIAS, ADD, Y, M, N, K, sxm, sam, sym, blocksize2, offset,
    BS: tl.constexpr, NESTED: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_ADD: tl.constexpr,
    IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    GATHER: tl.constexpr,
):  # fmt: skip
    """The same product when K is a multiple of the quantization block BS (and BLOCK_K of BS): every
    row starts on a block, so each program reads whole bytes and one absmax per block.  Byte i of row n's
    chunk at k0 holds W[n, k0 + 2i] (high nibble) and W[n, k0 + 2i + 1] (low nibble); instead of
    interleaving the two halves, x is split the same way:

        acc[n, m] += sum_i W[n, k0 + 2i] x[m, k0 + 2i] + sum_i W[n, k0 + 2i + 1] x[m, k0 + 2i + 1]
        W[n, k]    = code[nibble] * absmax[(n K + k) // BS]   (absmax decoded as above when nested)

    GATHER loads the absmax per byte; otherwise per block, broadcast by reshaping the tile to
    [BLOCK_N, blocks, BS / 2] (fewer loads, a layout change): the autotuner picks per shape.
    """
    HALF: tl.constexpr = BLOCK_K // 2
    NB: tl.constexpr = BLOCK_K // BS
    pid = tl.program_id(0)
    rn = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    rm = tl.arange(0, BLOCK_M)
    nmask = rn < N
    mmask = rm < M
    byte0 = rn.to(tl.int64)[:, None] * (K // 2)
    blk0 = rn.to(tl.int64)[:, None] * (K // BS)
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ri = tl.arange(0, HALF)
        bmask = nmask[:, None] & ((k0 // 2 + ri)[None, :] < K // 2)
        byte = tl.load(PACKED + byte0 + k0 // 2 + ri[None, :], mask=bmask, other=0).to(tl.int32)
        if GATHER:  # one absmax load per byte (from L1): no reshape of the tile
            rb = (k0 + 2 * ri) // BS
            amask = bmask
            blk = blk0 + rb[None, :]  # [BLOCK_N, HALF]
        else:  # one absmax load per block, broadcast over its BS / 2 bytes
            rb = k0 // BS + tl.arange(0, NB)
            amask = nmask[:, None] & (rb[None, :] < K // BS)
            blk = blk0 + rb[None, :]  # [BLOCK_N, NB]
        if NESTED:
            q = tl.load(ABSMAX + blk, mask=amask, other=0).to(tl.int32)
            a = tl.load(CODE2 + q, mask=amask, other=0.0) * tl.load(
                ABSMAX2 + blk // blocksize2, mask=amask, other=0.0
            )
            a = a + offset
        else:
            a = tl.load(ABSMAX + blk, mask=amask, other=0.0)
        if GATHER:
            hi = tl.load(CODE + (byte >> 4)) * a
            lo = tl.load(CODE + (byte & 15)) * a
        else:
            a = a[:, :, None]  # [BLOCK_N, NB, 1] against [BLOCK_N, NB, BS / 2] nibbles
            hi = tl.reshape(tl.load(CODE + (byte >> 4)), (BLOCK_N, NB, BS // 2)) * a
            lo = tl.reshape(tl.load(CODE + (byte & 15)), (BLOCK_N, NB, BS // 2)) * a
            hi = tl.reshape(hi, (BLOCK_N, HALF))
            lo = tl.reshape(lo, (BLOCK_N, HALF))
        kx = k0 + 2 * ri
        xmask = (kx < K)[:, None] & mmask[None, :]
        xe = tl.load(X + rm[None, :] * sxm + kx[:, None], mask=xmask, other=0.0)  # [HALF, BLOCK_M]
        xo = tl.load(X + rm[None, :] * sxm + kx[:, None] + 1, mask=xmask, other=0.0)
        if IEEE:
            acc += tl.dot(hi.to(xe.dtype).to(tl.float32), xe.to(tl.float32), input_precision="ieee")
            acc += tl.dot(lo.to(xo.dtype).to(tl.float32), xo.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(hi.to(xe.dtype), xe)
            acc += tl.dot(lo.to(xo.dtype), xo)
    _store(acc, BIAS, ADD, Y, rn, rm, nmask, mmask, sam, sym, HAS_BIAS, HAS_ADD)


# On the GPU the tile is tuned per weight shape (a handful in a model: q, k/v, o, gate/up, down).
_nf4_mm_tuned = triton.autotune(
    configs=[
        triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
        for bn, bk, w, s in [
            (16, 256, 4, 3),
            (16, 512, 4, 3),
            (32, 256, 4, 3),
            (32, 128, 4, 4),
            (32, 512, 8, 3),
            (64, 128, 4, 3),
            (64, 256, 8, 3),
            (16, 1024, 8, 2),
        ]
    ],  # fmt: skip
    key=["M", "N", "K", "BLOCK_M"],
    **_CACHE_RESULTS,
)(_nf4_mm_kernel)

_nf4_mm_aligned_tuned = triton.autotune(
    configs=[
        triton.Config({"BLOCK_N": bn, "BLOCK_K": bk, "GATHER": g}, num_warps=w, num_stages=st)
        for bn, bk, w, st in [
            (16, 256, 4, 3),
            (16, 512, 4, 3),
            (32, 256, 4, 3),
            (32, 512, 4, 3),
            (32, 512, 8, 2),
            (64, 256, 4, 3),
            (64, 512, 8, 2),
            (16, 1024, 4, 2),
        ]
        for g in (True, False)
    ],  # fmt: skip
    key=["M", "N", "K", "BLOCK_M", "BS"],
    **_CACHE_RESULTS,
)(_nf4_mm_aligned_kernel)

_CPU_BLOCK_N, _CPU_BLOCK_K = 16, 64  # under the interpreter
_CPU_GATHER = False  # tests flip it to run both absmax forms


def _check(x: torch.Tensor, w: NF4Weight, bias, add, out) -> tuple[int, int, int]:
    if x.dim() != 2 or x.stride(1) != 1:
        raise ValueError(f"x must be a [rows, in] matrix with unit column stride, got {tuple(x.shape)}")
    if len(w.shape) != 2 or w.shape[1] != x.shape[1]:
        raise ValueError(f"weight shape {w.shape} does not take inputs of {x.shape[1]} features")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"x must be fp32, fp16 or bf16, got {x.dtype}")
    m, (n, k) = x.shape[0], w.shape
    if k == 0:
        raise ValueError("nf4_matmul needs at least one input feature")
    if m > MAX_ROWS:
        raise ValueError(f"nf4_matmul takes at most {MAX_ROWS} rows, got {m}: dequantize and use a matmul")
    if w.blocksize % 2:
        raise ValueError(f"blocksize must be even, got {w.blocksize}")
    if bias is not None and bias.shape != (n,):
        raise ValueError(f"bias must be [{n}], got {tuple(bias.shape)}")
    for name, t in (("add", add), ("out", out)):
        if t is not None and (t.shape != (m, n) or t.stride(1) != 1):
            raise ValueError(f"{name} must be a [{m}, {n}] matrix with unit column stride")
    if out is not None and out.dtype != x.dtype:
        raise TypeError(f"out must be {x.dtype}, got {out.dtype}")
    return m, n, k


def nf4_matmul(
    x: torch.Tensor,
    w: NF4Weight,
    bias: torch.Tensor | None = None,
    add: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    aligned: bool = True,
    lora: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """round(round(x @ dequant(w)^T + bias) + add) in x's dtype, for x [M <= 64, K] and w of shape [N, K].

    `add` [M, N] (e.g. a LoRA term) and `out` [M, N] may be column slices of wider buffers (unit column
    stride, any row stride).  `lora` = (xa [M, R], b [N, R], scale [N] or None) adds the adapter term
    round(round(xa b^T) * scale) (in b's dtype, then x's) as one more addend, computed in the kernel for
    a decode batch (M <= ROWS_MAX, block-aligned K) and by torch otherwise.  No autograd: the weight is
    frozen and this is an inference op.  aligned=False forces the general kernel (for tests; the
    aligned ones run when K % blocksize == 0).
    """
    m, n, k = _check(x, w, bias, add, out)
    if lora is not None:  # checked here for both paths: the rows kernel's and torch's
        check_lora(m, n, *lora)
    if out is None:
        out = torch.empty((m, n), device=x.device, dtype=x.dtype)
    if m == 0 or n == 0:
        return out
    bs = w.blocksize
    block_aligned = aligned and k % bs == 0 and bs >= 2 and bs & (bs - 1) == 0 and bs <= 256
    if block_aligned and m <= ROWS_MAX:
        return rows_matmul(x, [w], bias, add, out, lora)
    if lora is not None:  # the adapter term by torch, then added as `add` is
        term = _lora_term(x, lora)
        add = term if add is None else (add.float() + term.float()).to(x.dtype)
    absmax2 = w.absmax2 if w.nested else w.absmax
    code2 = w.code2 if w.nested else w.code
    block_m = max(16, triton.next_power_of_2(m))
    args: tuple = (
        x, w.packed, w.absmax, w.code, absmax2, code2, bias if bias is not None else x,
        add if add is not None else x, out, m, n, k, x.stride(0), add.stride(0) if add is not None else 0,
        out.stride(0), w.blocksize, w.blocksize2, float(w.offset),
    )  # fmt: skip
    flags = dict(
        NESTED=w.nested, HAS_BIAS=bias is not None, HAS_ADD=add is not None, IEEE=x.dtype == torch.float32 or not x.is_cuda,
        BLOCK_M=block_m,
    )  # fmt: skip
    if block_aligned:
        args = args[:15] + args[16:]  # the aligned kernel takes the block size as a constexpr
        if x.is_cuda:
            _nf4_mm_aligned_tuned[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)](*args, BS=bs, **flags)
        else:
            block_k = max(_CPU_BLOCK_K, bs)
            grid = (triton.cdiv(n, _CPU_BLOCK_N),)
            _nf4_mm_aligned_kernel[grid](
                *args, BS=bs, **flags, BLOCK_N=_CPU_BLOCK_N, BLOCK_K=block_k, GATHER=_CPU_GATHER
            )
    elif x.is_cuda:
        _nf4_mm_tuned[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)](*args, **flags)
    else:
        grid = (triton.cdiv(n, _CPU_BLOCK_N),)
        _nf4_mm_kernel[grid](*args, **flags, BLOCK_N=_CPU_BLOCK_N, BLOCK_K=_CPU_BLOCK_K)
    return out


def _lora_term(x: torch.Tensor, lora: tuple) -> torch.Tensor:
    """round_x(round_a(xa b^T) * scale) by torch: what the rows kernel computes in its epilogue."""
    xa, b, scale = lora
    term = xa @ b.t()
    return (term if scale is None else term * scale).to(x.dtype)


__all__ = ["MAX_ROWS", "ROWS_MAX", "nf4_matmul"]
