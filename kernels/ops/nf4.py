"""NF4 dequantization of bitsandbytes 4-bit weights (with the double-quantized absmax) to bf16/fp16/fp32.

Knows torch and triton only: the caller (kernels.patch) copies the tensors out of bitsandbytes'
QuantState into an `NF4Weight`.  Layout it assumes, as bitsandbytes 0.4x-0.50 stores it: the weight
flattened row-major, two 4-bit codes per byte (element 2i in the high nibble, 2i+1 in the low one),
one absmax per `blocksize` elements; with double quantization the absmax is itself uint8 codes into
`code2`, scaled per `blocksize2` absmax values by `absmax2`, plus `offset`.  The dequantized weight
has no gradient: the base weight of a LoRA layer is frozen.  It does not know FP4 or 8-bit weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from .._launch import autotune_cache_kwargs

_BLOCK = 2048  # outputs per program under the CPU interpreter


@triton.jit
def _nf4_values(
    PACKED, ABSMAX, CODE, ABSMAX2, CODE2, offset, j, m, blocksize, blocksize2, NESTED: tl.constexpr
):
    """The fp32 values of flat weight elements j (masked by m): the arithmetic every dequant kernel shares."""
    byte = tl.load(PACKED + j // 2, mask=m, other=0).to(tl.int32)
    nib = tl.where(j % 2 == 0, byte >> 4, byte & 15)
    blk = j // blocksize
    if NESTED:
        q = tl.load(ABSMAX + blk, mask=m, other=0).to(tl.int32)
        a = tl.load(CODE2 + q, mask=m, other=0.0) * tl.load(ABSMAX2 + blk // blocksize2, mask=m, other=0.0)
        a = a + offset
    else:
        a = tl.load(ABSMAX + blk, mask=m, other=0.0)
    return tl.load(CODE + nib, mask=m, other=0.0) * a


@triton.jit
def _nf4_dequant_kernel(
    PACKED, ABSMAX, CODE, ABSMAX2, CODE2, OUT, n, cols, ld, blocksize, blocksize2, offset,
    NESTED: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Grid (rows, column blocks).  Element j = row * cols + col of the flat weight, written to
    OUT[row * ld + col] (ld >= cols lets it land in a slice of a wider buffer):

        nib = packed[j // 2] >> 4  if j even  else  packed[j // 2] & 15
        a   = code2[absmax[j // bs]] * absmax2[j // bs // bs2] + offset   (nested)   or  absmax[j // bs]
        w_j = code[nib] * a   (fp32, then cast to the output dtype)

    One output per lane; each byte is read by two neighbouring lanes (from L1).  A byte-per-lane form
    that joins both nibbles with tl.interleave was slower (the interleave costs a layout shuffle;
    bench/HISTORY.md).
    """
    row = tl.program_id(0).to(tl.int64)
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = col < cols
    w = _nf4_values(
        PACKED, ABSMAX, CODE, ABSMAX2, CODE2, offset, row * cols + col, m, blocksize, blocksize2, NESTED
    )
    tl.store(OUT + row * ld + col, w.to(OUT.dtype.element_ty), mask=m)


# On the GPU the block size and warps are tuned once per weight size (three sizes in a Llama model).
_nf4_dequant_tuned = triton.autotune(
    configs=[triton.Config({"BLOCK": b}, num_warps=w) for b in (1024, 2048, 4096) for w in (4, 8)],
    key=["n", "cols"],
    **autotune_cache_kwargs(),  # tuned once per machine and shape, kept on disk
)(_nf4_dequant_kernel)


@triton.jit
def _nf4_dequant_group_kernel(
    P0, A0, C0, B0, D0, o0, P1, A1, C1, B1, D1, o1, P2, A2, C2, B2, D2, o2,
    OUT, r1, r2, n, cols, ld, blocksize, blocksize2,
    NESTED: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Up to three weights of `cols` columns, one under the other in OUT: output rows [0, r1) from
    weight 0 (packed P0, absmax A0, code C0, absmax2 B0, code2 D0, offset o0), [r1, r2) from weight 1,
    [r2, ...) from weight 2.  Per element the arithmetic of _nf4_dequant_kernel, written the same way;
    one launch instead of one per weight (q/k/v, gate/up)."""
    orow = tl.program_id(0)
    in1 = orow >= r1
    in2 = orow >= r2
    PACKED = tl.where(in2, P2, tl.where(in1, P1, P0))
    ABSMAX = tl.where(in2, A2, tl.where(in1, A1, A0))
    CODE = tl.where(in2, C2, tl.where(in1, C1, C0))
    ABSMAX2 = tl.where(in2, B2, tl.where(in1, B1, B0))
    CODE2 = tl.where(in2, D2, tl.where(in1, D1, D0))
    offset = tl.where(in2, o2, tl.where(in1, o1, o0))
    row = (orow - tl.where(in2, r2, tl.where(in1, r1, 0))).to(tl.int64)
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = col < cols
    w = _nf4_values(
        PACKED, ABSMAX, CODE, ABSMAX2, CODE2, offset, row * cols + col, m, blocksize, blocksize2, NESTED
    )
    tl.store(OUT + orow.to(tl.int64) * ld + col, w.to(OUT.dtype.element_ty), mask=m)


_nf4_dequant_group_tuned = triton.autotune(
    configs=[triton.Config({"BLOCK": b}, num_warps=w) for b in (1024, 2048, 4096) for w in (4, 8)],
    key=["n", "cols"],
    **autotune_cache_kwargs(),
)(_nf4_dequant_group_kernel)


@dataclass(eq=False)
class NF4Weight:
    """A 4-bit NF4 weight of `shape` as bitsandbytes stores it; `dtype` is the dequantized dtype."""

    packed: torch.Tensor  # uint8, numel(shape) / 2 bytes
    absmax: torch.Tensor  # fp32 [n_blocks], or uint8 codes into code2 when nested
    code: torch.Tensor  # fp32 [16], the NF4 values
    blocksize: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    absmax2: torch.Tensor | None = None  # fp32 [n_blocks / blocksize2]
    code2: torch.Tensor | None = None  # fp32 [256]
    blocksize2: int = 256
    offset: float = 0.0

    @property
    def nested(self) -> bool:
        return self.absmax2 is not None

    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def dequantize(self, out: torch.Tensor | None = None) -> torch.Tensor:
        return dequantize_nf4(self, out)


def _check(w: NF4Weight, out: torch.Tensor | None) -> int:
    # the weight's own checks run once per weight (13 dequants per layer and step otherwise repeat
    # them); a field replaced by another object checks again
    key = (id(w.packed), id(w.absmax), id(w.code2), w.blocksize, w.shape, w.dtype)
    cached = w.__dict__.get("_checked")
    n = cached[1] if cached is not None and cached[0] == key else _check_weight(w, key)
    if out is not None:
        rows, cols = _rows_cols(w.shape)
        if out.shape != (rows, cols) or out.dtype != w.dtype or out.stride(1) != 1 or out.stride(0) < cols:
            raise ValueError(f"out must be a [{rows}, {cols}] {w.dtype} matrix with unit column stride")
    return n


def _check_weight(w: NF4Weight, key) -> int:
    n = w.numel()
    if w.packed.dtype != torch.uint8 or w.packed.numel() * 2 < n:
        raise ValueError(
            f"packed must be uint8 with {n // 2} bytes, got {w.packed.dtype} x {w.packed.numel()}"
        )
    if w.absmax.numel() < triton.cdiv(n, w.blocksize):
        raise ValueError(f"absmax has {w.absmax.numel()} blocks, {triton.cdiv(n, w.blocksize)} needed")
    if w.nested and (w.code2 is None or w.absmax.dtype != torch.uint8):
        raise ValueError("nested absmax must be uint8 codes and come with code2")
    if w.blocksize % 2:
        raise ValueError(f"blocksize must be even, got {w.blocksize}")
    if w.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"cannot dequantize to {w.dtype}")
    w.__dict__["_checked"] = (key, n)
    return n


def dequantize_nf4(w: NF4Weight, out: torch.Tensor | None = None) -> torch.Tensor:
    """The dense weight [*shape] in w.dtype; with `out` (a [rows, cols] matrix, row stride >= cols,
    e.g. a column slice of a wider buffer) it is written there and `out` is returned."""
    n = _check(w, out)
    rows, cols = _rows_cols(w.shape)
    if out is None:
        out = torch.empty((rows, cols), device=w.packed.device, dtype=w.dtype)
    absmax2 = w.absmax2 if w.nested else w.absmax
    code2 = w.code2 if w.nested else w.code
    if n:
        args = (w.packed, w.absmax, w.code, absmax2, code2, out, n, cols, out.stride(0), w.blocksize,
                w.blocksize2, float(w.offset))  # fmt: skip
        if out.is_cuda:
            _nf4_dequant_tuned[lambda meta: (rows, triton.cdiv(cols, meta["BLOCK"]))](*args, NESTED=w.nested)
        else:
            _nf4_dequant_kernel[(rows, triton.cdiv(cols, _BLOCK))](*args, NESTED=w.nested, BLOCK=_BLOCK)
    return out if out.stride(0) != cols else out.view(w.shape)


def can_dequantize_stacked(ws, dtype: torch.dtype) -> bool:
    """True when `dequantize_nf4_stacked` takes these weights: 2 or 3 NF4 weights to `dtype`, 2-D, the
    same columns, block sizes, double quantization and absmax dtype, on one device."""
    if not 2 <= len(ws) <= 3 or not all(isinstance(w, NF4Weight) for w in ws):
        return False
    w0 = ws[0]
    return all(
        w.dtype == dtype and len(w.shape) == 2 and w.shape[1] == w0.shape[1] and w.nested == w0.nested
        and w.blocksize == w0.blocksize and w.blocksize2 == w0.blocksize2 and w.absmax.dtype == w0.absmax.dtype
        and w.packed.device == w0.packed.device
        for w in ws
    )  # fmt: skip


def dequantize_nf4_stacked(ws, out: torch.Tensor) -> torch.Tensor:
    """The weights of `ws` (see can_dequantize_stacked) one under the other into `out` [sum of rows, cols]
    (row stride >= cols, e.g. the left columns of a wider buffer), in one launch; the values of one
    `dequantize_nf4` per weight."""
    rows = [w.shape[0] for w in ws]
    cols = ws[0].shape[1]
    for w in ws:
        _check(w, None)
    if (
        out.shape != (sum(rows), cols)
        or out.dtype != ws[0].dtype
        or out.stride(1) != 1
        or out.stride(0) < cols
    ):
        raise ValueError(f"out must be a [{sum(rows)}, {cols}] {ws[0].dtype} matrix with unit column stride")
    total = sum(rows)
    if total * cols == 0:
        return out
    args = []
    for w in (*ws, ws[-1])[:3]:
        absmax2 = w.absmax2 if w.nested else w.absmax
        code2 = w.code2 if w.nested else w.code
        args += [w.packed, w.absmax, w.code, absmax2, code2, float(w.offset)]
    r1 = rows[0]
    r2 = rows[0] + rows[1] if len(ws) == 3 else total
    args += [out, r1, r2, total * cols, cols, out.stride(0), ws[0].blocksize, ws[0].blocksize2]
    if out.is_cuda:
        grid = lambda meta: (total, triton.cdiv(cols, meta["BLOCK"]))  # noqa: E731
        _nf4_dequant_group_tuned[grid](*args, NESTED=ws[0].nested)
    else:
        _nf4_dequant_group_kernel[(total, triton.cdiv(cols, _BLOCK))](
            *args, NESTED=ws[0].nested, BLOCK=_BLOCK
        )
    return out


def _rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    cols = shape[-1] if shape else 1
    rows = 1
    for s in shape[:-1]:
        rows *= s
    return rows, cols


def dense_weight(w: torch.Tensor | NF4Weight) -> torch.Tensor:
    """A base weight as a dense tensor: NF4 weights are dequantized, dense ones returned as they are."""
    return w.dequantize() if isinstance(w, NF4Weight) else w
