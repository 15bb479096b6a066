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

_BLOCK = 2048  # bytes per program (4096 outputs)


@triton.jit
def _nf4_dequant_kernel(
    PACKED, ABSMAX, CODE, ABSMAX2, CODE2, OUT, n, blocksize, blocksize2, offset,
    NESTED: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Byte i of the packed weight holds elements 2i (high nibble) and 2i+1 (low nibble):

        a      = code2[absmax[2i // bs]] * absmax2[2i // bs // bs2] + offset   (nested)  or  absmax[2i // bs]
        w_2i   = code[packed[i] >> 4] * a,     w_2i+1 = code[packed[i] & 15] * a

    (bs is even, so both elements share one block.)  fp32 math, one cast at the store; the two
    halves are interleaved so each program writes 2 * BLOCK contiguous outputs.
    """
    pid = tl.program_id(0).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    m = 2 * i < n
    byte = tl.load(PACKED + i, mask=m, other=0).to(tl.int32)
    blk = (2 * i) // blocksize
    if NESTED:
        q = tl.load(ABSMAX + blk, mask=m, other=0).to(tl.int32)
        a = tl.load(CODE2 + q, mask=m, other=0.0) * tl.load(ABSMAX2 + blk // blocksize2, mask=m, other=0.0)
        a = a + offset
    else:
        a = tl.load(ABSMAX + blk, mask=m, other=0.0)
    hi = tl.load(CODE + (byte >> 4)) * a
    lo = tl.load(CODE + (byte & 15)) * a
    w = tl.interleave(hi, lo)
    j = 2 * pid * BLOCK + tl.arange(0, 2 * BLOCK)
    tl.store(OUT + j, w.to(OUT.dtype.element_ty), mask=j < n)


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
    if out is not None and (out.numel() != n or out.dtype != w.dtype or not out.is_contiguous()):
        raise ValueError("out must be a contiguous tensor of the weight's size and dtype")
    return n


def dequantize_nf4(w: NF4Weight, out: torch.Tensor | None = None) -> torch.Tensor:
    """The dense weight [*shape] in w.dtype (written into `out` when given)."""
    n = _check(w, out)
    if out is None:
        out = torch.empty(w.shape, device=w.packed.device, dtype=w.dtype)
    absmax2 = w.absmax2 if w.nested else w.absmax
    code2 = w.code2 if w.nested else w.code
    if n:
        _nf4_dequant_kernel[(triton.cdiv(n, 2 * _BLOCK),)](
            w.packed, w.absmax, w.code, absmax2, code2, out, n, w.blocksize, w.blocksize2, float(w.offset),
            NESTED=w.nested, BLOCK=_BLOCK, num_warps=8,
        )  # fmt: skip
    return out.view(w.shape)


def dense_weight(w: torch.Tensor | NF4Weight) -> torch.Tensor:
    """A base weight as a dense tensor: NF4 weights are dequantized, dense ones returned as they are."""
    return w.dequantize() if isinstance(w, NF4Weight) else w
