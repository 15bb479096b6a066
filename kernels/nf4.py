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

_BLOCK = 2048  # outputs per program under the CPU interpreter


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

    One output per lane; each byte is read by two neighbouring lanes (from L1).  Measured on an H200
    (Llama-8B step, 672 dequants): this form 25 ms per step; a byte-per-lane form that joined both
    nibbles with tl.interleave 47 ms (the interleave costs a layout shuffle).
    """
    row = tl.program_id(0).to(tl.int64)
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = col < cols
    j = row * cols + col
    byte = tl.load(PACKED + j // 2, mask=m, other=0).to(tl.int32)
    nib = tl.where(j % 2 == 0, byte >> 4, byte & 15)
    blk = j // blocksize
    if NESTED:
        q = tl.load(ABSMAX + blk, mask=m, other=0).to(tl.int32)
        a = tl.load(CODE2 + q, mask=m, other=0.0) * tl.load(ABSMAX2 + blk // blocksize2, mask=m, other=0.0)
        a = a + offset
    else:
        a = tl.load(ABSMAX + blk, mask=m, other=0.0)
    w = tl.load(CODE + nib, mask=m, other=0.0) * a
    tl.store(OUT + row * ld + col, w.to(OUT.dtype.element_ty), mask=m)


# On the GPU the block size and warps are tuned once per weight size (three sizes in a Llama model).
_nf4_dequant_tuned = triton.autotune(
    configs=[triton.Config({"BLOCK": b}, num_warps=w) for b in (1024, 2048, 4096) for w in (4, 8)],
    key=["n", "cols"],
)(_nf4_dequant_kernel)


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


def _rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    cols = shape[-1] if shape else 1
    rows = 1
    for s in shape[:-1]:
        rows *= s
    return rows, cols


def dense_weight(w: torch.Tensor | NF4Weight) -> torch.Tensor:
    """A base weight as a dense tensor: NF4 weights are dequantized, dense ones returned as they are."""
    return w.dequantize() if isinstance(w, NF4Weight) else w
