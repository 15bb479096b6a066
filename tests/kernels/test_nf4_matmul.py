"""NF4 few-row matmul against dequantize-then-matmul (fp32 exact to accumulation order; bf16 within
one rounding of the output), on awkward shapes: K not a multiple of the tile, odd N, M = 1, 3, 17,
blocksize 64, with and without double quant, bias and an added term in column slices of wider buffers."""

import os

import pytest
import torch
from kernel_compare import assert_close

bnbf = pytest.importorskip("bitsandbytes.functional")
pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="quantizes on the CPU: runs under the interpreter"
)

import tunesmith.kernels.decode.nf4_matmul as nf4_matmul_module  # noqa: E402
import tunesmith.kernels.decode.nf4_rows as nf4_rows_module  # noqa: E402
from tunesmith.kernels.decode.nf4_matmul import nf4_matmul  # noqa: E402
from tunesmith.kernels.ops.nf4 import NF4Weight, dequantize_nf4  # noqa: E402


def quantized(n, k, blocksize=64, nested=True, seed=0):
    torch.manual_seed(seed)
    packed, st = bnbf.quantize_4bit(torch.randn(n, k), blocksize=blocksize, quant_type="nf4",
                                    compress_statistics=nested)  # fmt: skip
    return NF4Weight(
        packed=packed.view(torch.uint8).reshape(-1), absmax=st.absmax, code=st.code.float(),
        blocksize=st.blocksize, shape=(n, k), dtype=torch.float32,
        absmax2=st.state2.absmax if nested else None, code2=st.state2.code if nested else None,
        blocksize2=st.state2.blocksize if nested else 256, offset=float(st.offset) if nested else 0.0,
    )  # fmt: skip


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("m,n,k", [(1, 37, 130), (3, 50, 96), (17, 33, 200), (4, 64, 64)])
def test_fp32_matches_dequantize_then_matmul(nested, m, n, k):
    w = quantized(n, k, nested=nested)
    x = torch.randn(m, k)
    ref = x @ dequantize_nf4(w).t()
    assert_close("y", nf4_matmul(x, w), ref, rtol=1e-6)
    assert_close("y general", nf4_matmul(x, w, aligned=False), ref, rtol=1e-6)


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize(
    "m,n,k,blocksize",
    [(1, 37, 192, 64), (3, 21, 640, 128), (17, 18, 768, 256), (5, 40, 320, 64), (12, 40, 320, 64)],
)  # 12 rows: the rows kernel's most common heavy case (16 rows a GRPO step samples)
@pytest.mark.parametrize("gather", [False, True])
def test_block_aligned_rows(nested, m, n, k, blocksize, gather, monkeypatch):
    """K a multiple of the block (the usual case): whole bytes and one absmax per block; K not a multiple
    of the kernel's tile (192, 320 with 64-element blocks; 640 with 128) leaves a partial last tile."""
    monkeypatch.setattr(nf4_matmul_module, "_CPU_GATHER", gather)  # more than 16 rows
    monkeypatch.setattr(nf4_rows_module, "CPU_GATHER", gather)  # up to 16
    w = quantized(n, k, blocksize=blocksize, nested=nested, seed=3)
    x = torch.randn(m, k)
    bias, add = torch.randn(n), torch.randn(m, n)
    ref = x @ dequantize_nf4(w).t() + bias + add
    assert_close("y", nf4_matmul(x, w, bias=bias, add=add), ref, rtol=1e-6)


def test_bias_add_and_strided_slices():
    m, n, k = 3, 45, 130
    w = quantized(n, k, seed=1)
    wide_x = torch.randn(m, k + 7)
    x = wide_x[:, 3 : 3 + k]
    bias = torch.randn(n)
    add = torch.randn(m, n + 10)[:, 5 : 5 + n]
    out_buf = torch.zeros(m, n + 20)
    out = out_buf[:, 10 : 10 + n]
    got = nf4_matmul(x, w, bias=bias, add=add, out=out)
    assert got.data_ptr() == out.data_ptr()
    ref = x @ dequantize_nf4(w).t() + bias + add
    assert_close("y", out, ref, rtol=1e-6)
    assert (out_buf[:, :10] == 0).all() and (out_buf[:, 10 + n :] == 0).all()


@pytest.mark.parametrize("m", [12, 17])  # the rows kernel, the tensor-core kernel for more rows
def test_bf16_within_one_rounding(m):
    n, k = 40, 192
    w = quantized(n, k, seed=2)
    x = torch.randn(m, k).bfloat16()
    wb = dequantize_nf4(w).bfloat16()
    add = torch.randn(m, n).bfloat16()
    ref = (x.float() @ wb.float().t()).bfloat16()
    ref = (ref + add).float()
    got = nf4_matmul(x, w, add=add)
    assert got.dtype == torch.bfloat16
    # bf16 roundings of the tile and the output (the interpreter's casts truncate): within bf16 precision
    assert_close("y", got.float(), ref, rtol=2**-6)


def test_rejects_too_many_rows():
    w = quantized(16, 64)
    with pytest.raises(ValueError, match="at most"):
        nf4_matmul(torch.randn(65, 64), w)


@pytest.mark.parametrize("m", [4, 17])  # the rows kernel's path and torch's
def test_rejects_lora_factors_of_the_wrong_shape(m):
    w, x = quantized(40, 192), torch.randn(m, 192)
    with pytest.raises(ValueError, match="lora needs xa"):
        nf4_matmul(x, w, lora=(torch.randn(m, 12), torch.randn(39, 12), None))
    with pytest.raises(ValueError, match="lora needs xa"):
        nf4_matmul(x, w, lora=(torch.randn(m + 1, 12), torch.randn(40, 12), None))
    with pytest.raises(ValueError, match="lora scale"):
        nf4_matmul(x, w, lora=(torch.randn(m, 12), torch.randn(40, 12), torch.ones(41)))


@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("m", [1, 4, 12, 17])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lora_term_in_the_epilogue(scaled, m, dtype):
    """The adapter term the decode step adds (x A^T computed outside, then its product with B and the
    per-column scale) as torch rounds it: in the rows kernel's epilogue for a decode batch, by torch
    for 17 rows; it lands on top of bias and `add` like any other addend.  fp32: equal to summation
    order; bf16: within one rounding (the interpreter's casts truncate where the GPU's round)."""
    n, k, r = 40, 192, 12
    w = quantized(n, k, seed=5)
    x = torch.randn(m, k).to(dtype)
    xa = torch.randn(m, r)  # fp32 adapters, as peft keeps them for a 4-bit base
    b = torch.randn(n, r) / 4
    scale = torch.rand(n) + 0.5 if scaled else None
    bias, add = torch.randn(n).to(dtype), torch.randn(m, n).to(dtype)
    term = xa @ b.t()
    term = (term if scale is None else term * scale).to(dtype)
    ref = nf4_matmul(x, w, bias=bias, add=add).float() + term.float()
    got = nf4_matmul(x, w, bias=bias, add=add, lora=(xa, b, scale))
    assert got.dtype == dtype
    assert_close("y", got.float(), ref, rtol=1e-6 if dtype == torch.float32 else 2**-6)
