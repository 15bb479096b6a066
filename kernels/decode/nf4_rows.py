"""y = x @ dequant(W)^T (+ bias, + add, + a LoRA term) for a decode batch of 1-16 rows, from 4-bit NF4.

Knows torch and triton only (called by nf4_matmul.py, which checks the arguments, and by the decode
step's projection groups).  Why a kernel of its own: a decode step is memory-bound on the 4-bit weight,
and a tensor-core dot needs 16 rows, so for 1-8 rows most of its work is padding.  Here each weight
byte is decoded once and multiplied into every row with fp32 FMAs (the products of the rounded tile
and x are exact in fp32 for 16-bit inputs, as a dot's are); tensor-core dots for 9-16 rows were tried
and measured 2.2x slower than these FMAs at 16 rows (bench/HISTORY.md, session 10).  What makes it
fast is how much is in flight: a decode projection has few output rows (1,024 for a k/v projection),
so the K dimension is split too (split-K) until the grid holds about eight programs per SM.  Each split stores fp32 partial sums; the last split of a tile to finish adds them in a fixed order
(split_k.py: deterministic, unlike atomics, and no second launch) and applies the epilogue:

    y[m, n] = round(res[m, n] + round(round(sum_s part[s, m, n] + bias[n]) + add[m, n] + lora[m, n]))
    lora[m, n] = round_x(round_a(round_a(sum_r xa[m, r] b[n, r]) * scale[n]))     (when given)

(round_a: the adapters' dtype; round_x: the output's) - the rounding of peft's adapter term added to
a bitsandbytes layer's output, with xa = x A^T computed by the caller (lora_rows.py).  One launch
takes up to three weights of the same input side by side (q/k/v, gate/up: GROUP_MAX), their outputs
in adjacent columns of y: a decode step is a thousand small kernels, and every launch saved counts.
Index arithmetic stays in int32 with constexpr power-of-two block sizes: a runtime int64 division per
byte cost more than reading the byte.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from .._launch import autotune_cache_kwargs
from ..ops.glu import swiglu_at
from ..ops.nf4 import NF4Weight
from .split_k import arrive, tile_counters

ROWS_MAX = 16  # the most rows this kernel takes; nf4_matmul uses tensor-core dots above
GROUP_MAX = 3  # weights one launch takes
BLOCK_N = 16  # output columns (weight rows) per program
K_GRAIN = 512  # a split covers a multiple of this many inputs (every BLOCK_K config divides it)
PROGRAMS_PER_SM = 8  # split-K aims at this many programs per SM


@triton.jit
def _epilogue(
    y, rm, rc, mmask, nmask, BIAS, ADD, Y, XA, LB, LSCALE, RES, R, sam, sym, sxa, slb, sres,
    HAS_BIAS: tl.constexpr, HAS_ADD: tl.constexpr, HAS_LORA: tl.constexpr, HAS_SCALE: tl.constexpr,
    HAS_RES: tl.constexpr, BLOCK_R: tl.constexpr,
):  # fmt: skip
    """y [BLOCK_M, BLOCK_N] fp32 sums for output columns rc -> bias, rounding, add, the LoRA term,
    the residual, stored (module docstring)."""
    if HAS_BIAS:
        y += tl.load(BIAS + rc, mask=nmask, other=0.0).to(tl.float32)[None, :]
    y = y.to(Y.dtype.element_ty)
    omask = mmask[:, None] & nmask[None, :]
    if HAS_ADD:
        add = tl.load(ADD + rm[:, None] * sam + rc[None, :], mask=omask, other=0.0)
        y = (y.to(tl.float32) + add.to(tl.float32)).to(Y.dtype.element_ty)
    if HAS_LORA:
        rr = tl.arange(0, BLOCK_R)
        rmask = rr < R
        xa = tl.load(XA + rm[:, None] * sxa + rr[None, :], mask=mmask[:, None] & rmask[None, :], other=0.0)
        lb = tl.load(LB + rc[:, None] * slb + rr[None, :], mask=nmask[:, None] & rmask[None, :], other=0.0)
        lora = tl.sum(xa.to(tl.float32)[:, None, :] * lb.to(tl.float32)[None, :, :], axis=2)
        lora = lora.to(LB.dtype.element_ty)
        if HAS_SCALE:
            scale = tl.load(LSCALE + rc, mask=nmask, other=0.0).to(tl.float32)
            lora = (lora.to(tl.float32) * scale[None, :]).to(LB.dtype.element_ty)
        y = (y.to(tl.float32) + lora.to(Y.dtype.element_ty).to(tl.float32)).to(Y.dtype.element_ty)
    if HAS_RES:
        res = tl.load(RES + rm[:, None] * sres + rc[None, :], mask=omask, other=0.0)
        y = (res.to(tl.float32) + y.to(tl.float32)).to(Y.dtype.element_ty)
    tl.store(Y + rm[:, None] * sym + rc[None, :], y, mask=omask)


@triton.jit
def x_at(X, offs, mask, GLU: tl.constexpr, up_offset):
    """Elements `offs` of the input, in X's dtype: X itself, or (GLU) silu(g) * u of a [g | u] row -
    the down projection reads the gate/up output and forms its input where it loads it."""
    if GLU:
        v = swiglu_at(X, offs, mask, up_offset)
    else:
        v = tl.load(X + offs, mask=mask, other=0.0)
    return v


@triton.jit
def _pick(in1, in2, v0, v1, v2):
    """v0, v1 or v2: the value of the weight this program works on."""
    return tl.where(in2, v2, tl.where(in1, v1, v0))


@triton.jit
def _rows_kernel(
    X, P0, A0, B0, D0, o0, P1, A1, B1, D1, o1, P2, A2, B2, D2, o2, CODE,
    BIAS, ADD, Y, XA, LB, LSCALE, RES, PART, COUNT,
    M, K, R, N0, N1, N2, b1, b2, c1, c2, NT, k_per_split, sxm, sam, sym, sxa, slb, sres,
    BS: tl.constexpr, BS2: tl.constexpr, NESTED: tl.constexpr,
    HAS_BIAS: tl.constexpr, HAS_ADD: tl.constexpr, HAS_LORA: tl.constexpr, HAS_SCALE: tl.constexpr,
    HAS_RES: tl.constexpr, GLU: tl.constexpr,
    SPLIT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    BLOCK_R: tl.constexpr, GATHER: tl.constexpr,
):  # fmt: skip
    """Grid (N blocks of all weights, SPLIT).  Blocks [0, b1) are weight 0's (packed P0, absmax A0,
    absmax2 B0, code2 D0, offset o0; N0 rows; output columns from 0), [b1, b2) weight 1's (columns from
    c1), [b2, ...) weight 2's (from c2).  Program (i, s) sums inputs [s k_per_split, (s + 1) k_per_split)
    for weight rows n of block i and all x rows m; K is a multiple of the quantization block BS:

        byte b of row n holds W[n, 2b] (high nibble) and W[n, 2b + 1] (low nibble)
        W[n, k] = code[nibble] * a,  a = code2[absmax[q]] * absmax2[q // BS2] + offset (nested) or absmax[q],
                  q = (n K + k) // BS,  cast to x's dtype
        acc[m, n, i] += W[n, k0 + 2i] x[m, k0 + 2i] + W[n, k0 + 2i + 1] x[m, k0 + 2i + 1]   (fp32)

    GATHER loads each byte's block scale a (three loads per byte when nested); otherwise one per block
    of the tile, broadcast by reshaping the tile to [BLOCK_N, NB, bytes per block] (fewer loads, a layout
    change): the autotuner picks per shape.  GLU: x is [M, 2K] gate | up and the input is
    silu(gate) * up, formed where it is loaded (as the SwiGLU kernel would store it).
    """
    HALF: tl.constexpr = BLOCK_K // 2
    NB: tl.constexpr = (BLOCK_K + BS - 1) // BS  # quantization blocks a tile covers (1 when BS > BLOCK_K)
    pid = tl.program_id(0)
    split = tl.program_id(1)
    in1 = pid >= b1
    in2 = pid >= b2
    PACKED = _pick(in1, in2, P0, P1, P2)
    ABSMAX = _pick(in1, in2, A0, A1, A2)
    ABSMAX2 = _pick(in1, in2, B0, B1, B2)
    CODE2 = _pick(in1, in2, D0, D1, D2)
    offset = _pick(in1, in2, o0, o1, o2)
    N = _pick(in1, in2, N0, N1, N2)
    rn = (pid - _pick(in1, in2, 0, b1, b2)) * BLOCK_N + tl.arange(0, BLOCK_N)  # the weight's rows
    rc = _pick(in1, in2, 0, c1, c2) + rn  # their output columns
    rm = tl.arange(0, BLOCK_M)
    ri = tl.arange(0, HALF)
    nmask = rn < N
    mmask = rm < M
    half_k = K // 2
    byte0 = rn.to(tl.int64)[:, None] * half_k
    blk0 = rn[:, None] * (K // BS)  # int32: a weight has far fewer than 2^31 quantization blocks
    acc = tl.zeros((BLOCK_M, BLOCK_N, HALF), dtype=tl.float32)
    k_start = split * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    for k0 in range(k_start, k_end, BLOCK_K):
        kb = k0 // 2 + ri
        bmask = nmask[:, None] & (kb < half_k)[None, :]
        byte = tl.load(PACKED + byte0 + kb[None, :], mask=bmask, other=0).to(tl.int32)
        if GATHER:  # the block scale loaded per byte (from L1): no reshape of the tile
            blk = blk0 + ((k0 + 2 * ri) // BS)[None, :]
            amask = bmask
        else:  # one load per quantization block in the tile, broadcast over its bytes
            rb = k0 // BS + tl.arange(0, NB)
            blk = blk0 + rb[None, :]  # [BLOCK_N, NB]
            amask = nmask[:, None] & (rb < K // BS)[None, :]
        if NESTED:
            q = tl.load(ABSMAX + blk, mask=amask, other=0).to(tl.int32)
            a = tl.load(CODE2 + q, mask=amask, other=0.0) * tl.load(
                ABSMAX2 + blk // BS2, mask=amask, other=0.0
            )
            a = a + offset
        else:
            a = tl.load(ABSMAX + blk, mask=amask, other=0.0)
        hi = tl.load(CODE + (byte >> 4))
        lo = tl.load(CODE + (byte & 15))
        if GATHER:
            hi, lo = hi * a, lo * a
        else:
            hi = tl.reshape(tl.reshape(hi, (BLOCK_N, NB, HALF // NB)) * a[:, :, None], (BLOCK_N, HALF))
            lo = tl.reshape(tl.reshape(lo, (BLOCK_N, NB, HALF // NB)) * a[:, :, None], (BLOCK_N, HALF))
        hi = hi.to(X.dtype.element_ty).to(tl.float32)
        lo = lo.to(X.dtype.element_ty).to(tl.float32)
        kx = k0 + 2 * ri
        xmask = mmask[:, None] & (kx < K)[None, :]
        xe = x_at(X, rm[:, None] * sxm + kx[None, :], xmask, GLU, K).to(tl.float32)
        xo = x_at(X, rm[:, None] * sxm + kx[None, :] + 1, xmask, GLU, K).to(tl.float32)
        # two multiply-adds, not a multiply, a multiply-add and an add: the products are exact in fp32
        acc += hi[None, :, :] * xe[:, None, :]
        acc += lo[None, :, :] * xo[:, None, :]
    y = tl.sum(acc, axis=2)  # [BLOCK_M, BLOCK_N]
    if SPLIT == 1:
        _epilogue(y, rm, rc, mmask, nmask, BIAS, ADD, Y, XA, LB, LSCALE, RES, R, sam, sym, sxa, slb, sres,
                  HAS_BIAS, HAS_ADD, HAS_LORA, HAS_SCALE, HAS_RES, BLOCK_R)  # fmt: skip
    else:
        mask = mmask[:, None] & nmask[None, :]
        tl.store(PART + split * M * NT + rm[:, None] * NT + rc[None, :], y, mask=mask)
        if arrive(COUNT, pid, SPLIT):  # the last split of this tile adds them all, in order
            y = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for s in tl.static_range(SPLIT):
                src = PART + s * M * NT + rm[:, None] * NT + rc[None, :]
                y += tl.load(src, mask=mask, other=0.0, cache_modifier=".cg")
            _epilogue(y, rm, rc, mmask, nmask, BIAS, ADD, Y, XA, LB, LSCALE, RES, R, sam, sym, sxa, slb,
                      sres, HAS_BIAS, HAS_ADD, HAS_LORA, HAS_SCALE, HAS_RES, BLOCK_R)  # fmt: skip


# Tiles tuned per shape on the GPU; results kept on disk (Triton's cache: GPU, versions, source, shapes).
_rows_tuned = triton.autotune(
    configs=[
        triton.Config({"BLOCK_K": bk, "GATHER": g}, num_warps=w, num_stages=st)
        for bk, w, st in [(128, 2, 2), (128, 4, 3), (256, 4, 2), (256, 8, 3), (512, 4, 2), (512, 8, 2)]
        for g in (True, False)
    ],
    key=["M", "N0", "N1", "N2", "K", "SPLIT", "BLOCK_M", "BLOCK_N", "BS", "HAS_LORA", "HAS_RES", "GLU"],
    **autotune_cache_kwargs(),
)(_rows_kernel)

CPU_BLOCK_K = 64  # under the interpreter (tests): small tiles, and two splits when K allows
CPU_GATHER = False  # tests flip it to run both forms of the block scale


@functools.lru_cache(maxsize=8)
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def split_count(n: int, k: int, device: torch.device, bn: int = BLOCK_N) -> int:
    """How many K splits give a grid over n output columns (bn per program) about PROGRAMS_PER_SM
    programs per SM (at least K_GRAIN inputs each); on the CPU two when K allows, so the tests run the
    split path too."""
    if device.type != "cuda":
        return 2 if k >= 2 * CPU_BLOCK_K else 1
    blocks = triton.cdiv(n, bn)
    want = triton.cdiv(PROGRAMS_PER_SM * _sm_count(device.index or 0), blocks)
    return max(1, min(want, k // K_GRAIN))


def groupable(weights: Sequence) -> bool:
    """Whether one rows_matmul launch takes these weights together: 1 to GROUP_MAX NF4 weights of one
    input size, quantized alike (block sizes, nesting), K a multiple of a power-of-two block <= 256."""
    if not 0 < len(weights) <= GROUP_MAX or not all(isinstance(w, NF4Weight) for w in weights):
        return False
    w0 = weights[0]
    bs, k = w0.blocksize, w0.shape[1]
    if not (k % bs == 0 and 2 <= bs <= 256 and bs & (bs - 1) == 0):
        return False
    return all(
        w.shape[1] == k and w.blocksize == bs and w.blocksize2 == w0.blocksize2 and w.nested == w0.nested
        for w in weights
    )


def rows_matmul(
    x: torch.Tensor,
    weights: Sequence[NF4Weight],
    bias: torch.Tensor | None,
    add: torch.Tensor | None,
    out: torch.Tensor,
    lora: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None,
    residual: torch.Tensor | None = None,
    glu: bool = False,
    config: dict | None = None,
) -> torch.Tensor:
    """out = the module docstring's y, for x [M <= ROWS_MAX, K] and `groupable` weights whose outputs
    lie side by side in out [M, sum of their rows]; bias [sum], add like out, lora = (xa [M, R],
    b [sum, R], scale [sum] or None) cover all of them.  `residual` (like out) is added last, as a
    decoder layer adds its down projection to the residual stream: out = round(residual + y).  glu:
    x is [M, 2K] gate | up and the weights take silu(gate) * up.  Shapes checked by the callers.
    config: the kernel's form, bypassing the autotuner (the GPU sweep): BLOCK_N, BLOCK_K, GATHER,
    num_warps, num_stages; any left out take BLOCK_N and the autotuner's first config."""
    config = dict(config or {})
    m, k = x.shape[0], x.shape[1] // 2 if glu else x.shape[1]
    bn = int(config.pop("BLOCK_N", BLOCK_N))
    ns = [int(w.shape[0]) for w in weights]
    nt = sum(ns)
    blocks = [triton.cdiv(n, bn) for n in ns]
    big = 2**30  # a boundary no program reaches: fewer than three weights
    b1 = blocks[0] if len(ns) > 1 else big
    b2 = blocks[0] + blocks[1] if len(ns) > 2 else big
    c1, c2 = ns[0], ns[0] + (ns[1] if len(ns) > 1 else 0)
    w0 = weights[0]
    per_weight: list = []
    for i in range(GROUP_MAX):
        w = weights[min(i, len(weights) - 1)]  # unused slots repeat the last weight
        per_weight += [w.packed, w.absmax, w.absmax2 if w.nested else w.absmax,
                       w.code2 if w.nested else w.code, float(w.offset)]  # fmt: skip
    xa, lb, scale = lora if lora is not None else (x, x, None)
    r = xa.shape[1] if lora is not None else 1
    split = split_count(nt, k, x.device, bn)
    block_k_cpu = max(CPU_BLOCK_K, w0.blocksize)
    grain = K_GRAIN if x.is_cuda else block_k_cpu  # a split's share is whole BLOCK_K tiles
    grain = max(grain, int(config.get("BLOCK_K", 0)))  # (powers of two: the larger is a multiple)
    k_per_split = triton.cdiv(triton.cdiv(k, split), grain) * grain
    split = triton.cdiv(k, k_per_split)  # rounding up the share can leave fewer splits
    grid = (sum(blocks), split)
    part = torch.empty((split, m, nt), device=x.device, dtype=torch.float32) if split > 1 else out
    count = tile_counters(x.device, grid[0]) if split > 1 else out
    args = (
        x, *per_weight, w0.code, bias if bias is not None else x, add if add is not None else x, out,
        xa, lb, scale if scale is not None else x, residual if residual is not None else x, part, count,
        m, k, r, *(ns + [0] * (GROUP_MAX - len(ns))), b1, b2, c1, c2, nt, k_per_split, x.stride(0),
        add.stride(0) if add is not None else 0, out.stride(0), xa.stride(0), lb.stride(0),
        residual.stride(0) if residual is not None else 0,
    )  # fmt: skip
    consts = dict(
        BS=w0.blocksize, BS2=w0.blocksize2, NESTED=w0.nested, HAS_BIAS=bias is not None, HAS_ADD=add is not None,
        HAS_LORA=lora is not None, HAS_SCALE=scale is not None, HAS_RES=residual is not None, GLU=glu, SPLIT=split, BLOCK_M=triton.next_power_of_2(m),
        BLOCK_N=bn, BLOCK_R=max(1, triton.next_power_of_2(r)),
    )  # fmt: skip
    if not x.is_cuda:  # the interpreter: small tiles, no warps or stages
        _rows_kernel[grid](*args, **consts, **{"BLOCK_K": block_k_cpu, "GATHER": CPU_GATHER, **config})
    elif config:  # the form given (missing tile settings: the autotuner's first config)
        first = _rows_tuned.configs[0]
        tile = {**first.kwargs, "num_warps": first.num_warps, "num_stages": first.num_stages, **config}
        _rows_kernel[grid](*args, **consts, **tile)
    else:
        _rows_tuned[grid](*args, **consts)
    return out


def check_lora(m: int, n: int, xa: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | None) -> None:
    """Raises ValueError unless xa is [m, R] and b [n, R] with unit column strides, scale None or [n]."""
    r = xa.shape[1]
    if xa.shape != (m, r) or xa.stride(1) != 1 or b.shape != (n, r) or b.stride(1) != 1:
        raise ValueError(
            f"lora needs xa [{m}, R] and b [{n}, R] with unit column strides, got {tuple(xa.shape)} and {tuple(b.shape)}"
        )
    if scale is not None and scale.shape != (n,):
        raise ValueError(f"lora scale must be [{n}], got {tuple(scale.shape)}")


__all__ = [
    "GROUP_MAX",
    "ROWS_MAX",
    "check_lora",
    "groupable",
    "rows_matmul",
    "split_count",
    "x_at",
]
