"""The decode step's grouped launches: one NF4 rows kernel over up to three weights side by side (q/k/v,
gate/up) with bias, LoRA term and split-K reduced by the last split to arrive, and x A^T for the
adapters in one kernel - against the per-weight kernel and torch, on awkward shapes."""

import os

import pytest
import torch
from kernel_compare import assert_close
from test_nf4_matmul import quantized

pytest.importorskip("bitsandbytes.functional")
pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="quantizes on the CPU: runs under the interpreter"
)

import tunesmith.kernels.decode.nf4_rows as nf4_rows  # noqa: E402
from tunesmith.kernels.decode.lora_rows import lora_xa  # noqa: E402
from tunesmith.kernels.decode.nf4_matmul import nf4_matmul  # noqa: E402
from tunesmith.kernels.decode.nf4_rows import groupable, rows_matmul, split_count  # noqa: E402
from tunesmith.kernels.decode.split_k import tile_counters  # noqa: E402
from tunesmith.kernels.ops.nf4 import dequantize_nf4  # noqa: E402


@pytest.mark.parametrize("m", [3, 12])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("ns", [(40, 18, 18), (33, 70)])
@pytest.mark.parametrize("gather", [False, True])
def test_group_equals_one_launch_per_weight(m, dtype, ns, gather, monkeypatch):
    """Weights of 40, 18, 18 rows (odd block counts) in one launch: each output column is bitwise what
    the single-weight launch gives (same products, same split order), biases and the adapter term
    included; the counters are back at zero so a second launch gives the same again.  Both forms of
    the block scale (per byte, per block broadcast) give the same bits."""
    monkeypatch.setattr(nf4_rows, "CPU_GATHER", gather)
    k, r = 320, 12
    ws = [quantized(n, k, blocksize=64, seed=10 + i) for i, n in enumerate(ns)]
    assert groupable(ws)
    nt = sum(ns)
    x = torch.randn(m, k).to(dtype)
    bias = torch.randn(nt).to(dtype)
    xa, b, scale = torch.randn(m, r), torch.randn(nt, r) / 4, torch.rand(nt) + 0.5
    assert split_count(nt, k, x.device) == 2  # the last-arriver reduce runs
    got = rows_matmul(x, ws, bias, None, torch.empty(m, nt, dtype=dtype), (xa, b, scale))
    again = rows_matmul(x, ws, bias, None, torch.empty(m, nt, dtype=dtype), (xa, b, scale))
    assert torch.equal(got, again)
    residual = torch.randn(m, nt).to(dtype)  # the down projection's residual stream, added last
    with_res = rows_matmul(x, ws, bias, None, torch.empty(m, nt, dtype=dtype), (xa, b, scale), residual)
    if dtype == torch.float32:
        assert torch.equal(with_res, residual + got)
    else:  # the interpreter's casts to bf16 truncate where torch's round: one unit in the last place
        assert_close("y + residual", with_res.float(), (residual + got).float(), rtol=2**-7)
    assert int(tile_counters(x.device, 1).abs().sum()) == 0
    c = 0
    for w, n in zip(ws, ns, strict=True):
        cols = slice(c, c + n)
        one = nf4_matmul(x, w, bias=bias[cols], lora=(xa, b[cols], scale[cols]))
        assert torch.equal(got[:, cols], one), f"columns {cols}"
        c += n
    ref = torch.cat([x.float() @ dequantize_nf4(w).to(dtype).float().t() for w in ws], dim=1)
    ref = ref + bias.float() + ((xa @ b.t()) * scale).to(dtype).float()
    assert_close("y", got.float(), ref, rtol=1e-6 if dtype == torch.float32 else 2**-6)


def test_groupable_needs_one_input_size_and_one_quantization():
    a, b = quantized(16, 128, blocksize=64), quantized(16, 192, blocksize=64)
    assert groupable([a]) and not groupable([a, b])
    assert not groupable([a, quantized(16, 128, blocksize=128)])
    assert not groupable([a, quantized(16, 128, blocksize=64, nested=False)])
    assert not groupable([a, a, a, a])  # more than one launch takes
    assert not groupable([a, torch.randn(16, 128)])


@pytest.mark.parametrize("m,k,r", [(1, 200, 16), (4, 640, 48), (12, 96, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lora_xa_equals_the_adapter_matmul(m, k, r, dtype):
    """x A^T as peft forms it (x cast to A's dtype, fp32 products and sums): equal up to the order of
    the additions; K not a multiple of the tile, ranks not a multiple of the block."""
    x = torch.randn(m, k).to(dtype)
    a = torch.randn(r, k)
    got = lora_xa(x, a)
    assert got.dtype == a.dtype and got.shape == (m, r)
    ref = x.to(a.dtype).double() @ a.double().t()
    assert_close("xa", got.double(), ref, rtol=1e-6)
    assert torch.equal(got, lora_xa(x, a))  # fixed order: the same bits every call
    with pytest.raises(ValueError, match="lora_xa takes"):
        lora_xa(torch.randn(17, k), a)


@pytest.mark.parametrize("m", [3, 12])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_swiglu_formed_where_the_input_is_loaded(m, dtype):
    """The down projection reads the gate/up output [g | u] and forms silu(g) * u as it loads it: bitwise
    what the SwiGLU kernel stores and the kernels then read, for the NF4 rows and for x A^T."""
    from tunesmith.kernels.ops.glu import swiglu

    k, r = 192, 8
    w = quantized(24, k, blocksize=64, seed=7)
    gu = torch.randn(m, 2 * k).to(dtype)
    h = swiglu(gu[:, :k], gu[:, k:])
    a, b = torch.randn(r, k), torch.randn(24, r)
    xa = lora_xa(gu, a, glu=True)
    assert torch.equal(xa, lora_xa(h, a))
    got = rows_matmul(gu, [w], None, None, torch.empty(m, 24, dtype=dtype), (xa, b, None), glu=True)
    assert torch.equal(got, rows_matmul(h, [w], None, None, torch.empty(m, 24, dtype=dtype), (xa, b, None)))


@pytest.mark.parametrize("m", [4, 13])
@pytest.mark.parametrize("nested", [True, False])
def test_a_given_form_computes_the_same_sums(m, nested):
    """The forms the GPU sweep times (bench/sweep_rows.py, `config=`): wider column tiles change no bit;
    the other tile size changes only the order of fp32 additions.  With bias, adapter term, residual."""
    k, ns, r = 384, (40, 24), 8
    ws = [quantized(n, k, blocksize=64, nested=nested, seed=20 + i) for i, n in enumerate(ns)]
    nt = sum(ns)
    x = torch.randn(m, k)
    bias, residual = torch.randn(nt), torch.randn(m, nt)
    lora = (torch.randn(m, r), torch.randn(nt, r) / 4, None)

    def run(**form):
        return rows_matmul(x, ws, bias, None, torch.empty(m, nt), lora, residual, config=form or None)

    base = run()
    assert torch.equal(run(BLOCK_N=32), base)
    assert torch.equal(run(BLOCK_N=32, GATHER=True), base)
    ref = x.double() @ torch.cat([dequantize_nf4(w).double() for w in ws]).t()
    ref = residual.double() + ref + bias.double() + lora[0].double() @ lora[1].double().t()
    assert_close("BLOCK_K 128", run(BLOCK_K=128).double(), ref, rtol=1e-5)
    assert_close("default", base.double(), ref, rtol=1e-5)
    assert int(tile_counters(x.device, 1).abs().sum()) == 0
