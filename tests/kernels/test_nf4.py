"""NF4 dequantization against a plain-PyTorch reference of bitsandbytes' layout (and bitsandbytes itself
where its CPU kernel is right: its native CPU dequant mis-handles rows whose length is not a multiple
of the block size, e.g. 64 x 96 with blocksize 64, while the CUDA and generic paths use the layout
below), with and without double quant."""

import os

import pytest
import torch
from kernel_compare import assert_close

bnbf = pytest.importorskip("bitsandbytes.functional")
pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="quantizes on the CPU: runs under the interpreter"
)

from tunesmith.kernels.ops.nf4 import NF4Weight, dequantize_nf4  # noqa: E402


def to_nf4weight(packed, st):
    nested = st.nested
    return NF4Weight(
        packed=packed.view(torch.uint8).reshape(-1),
        absmax=st.absmax,
        code=st.code.float(),
        blocksize=st.blocksize,
        shape=tuple(st.shape),
        dtype=st.dtype,
        absmax2=st.state2.absmax if nested else None,
        code2=st.state2.code if nested else None,
        blocksize2=st.state2.blocksize if nested else 256,
        offset=float(st.offset) if nested else 0.0,
    )


def ref_dequant(packed, st):
    absmax = st.absmax
    if st.nested:
        absmax = st.state2.code[absmax.long()] * st.state2.absmax.repeat_interleave(st.state2.blocksize)[
            : absmax.numel()
        ] + float(st.offset)
    b = packed.view(torch.uint8).reshape(-1).long()
    nib = torch.stack([b >> 4, b & 15], dim=1).reshape(-1)
    n = st.shape.numel()
    return (st.code[nib][:n] * absmax.repeat_interleave(st.blocksize)[:n]).view(st.shape)


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("shape,blocksize", [((37, 130), 64), ((64, 96), 64), ((300, 70), 128)])
def test_nf4_matches_reference(nested, shape, blocksize):
    torch.manual_seed(0)
    w = torch.randn(shape)
    packed, st = bnbf.quantize_4bit(w, blocksize=blocksize, quant_type="nf4", compress_statistics=nested)
    got = dequantize_nf4(to_nf4weight(packed, st))
    assert_close("w", got, ref_dequant(packed, st), rtol=1e-7)
    assert (got - w).abs().max() < 0.5 * w.abs().max()  # the quantization error itself stays bounded


@pytest.mark.parametrize("nested", [True, False])
def test_nf4_matches_bitsandbytes(nested):
    torch.manual_seed(0)
    w = torch.randn(96, 128)
    packed, st = bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=nested)
    ref = bnbf.dequantize_4bit(packed, st, quant_type="nf4")
    assert_close("w", dequantize_nf4(to_nf4weight(packed, st)), ref, rtol=1e-7)


def test_nf4_bf16_output_within_one_ulp():
    torch.manual_seed(1)
    w = torch.randn(64, 96)
    packed, st = bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    ref = ref_dequant(packed, st)
    nw = to_nf4weight(packed, st)
    nw.dtype = torch.bfloat16
    got = dequantize_nf4(nw)
    assert got.dtype == torch.bfloat16
    # the interpreter's fp32 -> bf16 cast truncates: allow one bf16 ulp
    assert ((got.float() - ref).abs() <= ref.abs() * 2**-7 + 1e-6).all()


def test_nf4_rejects_short_absmax():
    nw = NF4Weight(
        torch.zeros(64, dtype=torch.uint8), torch.ones(1), torch.ones(16), 64, (8, 16), torch.float32
    )
    with pytest.raises(ValueError, match="absmax"):
        dequantize_nf4(nw)


def test_nf4_into_slice_of_wider_buffer():
    torch.manual_seed(2)
    w = torch.randn(48, 64)
    packed, st = bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    buf = torch.full((50, 70), 7.0)
    dequantize_nf4(to_nf4weight(packed, st), out=buf[1:49, 2:66])
    assert_close("slice", buf[1:49, 2:66], ref_dequant(packed, st), rtol=1e-7)
    assert (buf[0] == 7).all() and (buf[:, :2] == 7).all() and (buf[:, 66:] == 7).all()


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("rows", [(37, 19, 50), (64, 96)])
def test_nf4_stacked_is_the_separate_dequants(nested, rows):
    """q/k/v (or gate/up) dequantized one under the other in one launch, into the left columns of a
    wider buffer: bit-identical to one dequantize_nf4 per weight, the other columns untouched."""
    from tunesmith.kernels.ops.nf4 import can_dequantize_stacked, dequantize_nf4_stacked

    torch.manual_seed(3)
    cols = 130
    ws = []
    for r in rows:
        packed, st = bnbf.quantize_4bit(torch.randn(r, cols), blocksize=64, quant_type="nf4",
                                        compress_statistics=nested)  # fmt: skip
        ws.append(to_nf4weight(packed, st))
    assert can_dequantize_stacked(ws, torch.float32) and not can_dequantize_stacked(ws, torch.bfloat16)
    buf = torch.full((sum(rows), cols + 6), 7.0)
    dequantize_nf4_stacked(ws, buf[:, :cols])
    assert torch.equal(buf[:, :cols], torch.cat([dequantize_nf4(w) for w in ws]))
    assert (buf[:, cols:] == 7).all()
