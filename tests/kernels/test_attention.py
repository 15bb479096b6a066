"""kernels.ops.attention against F.scaled_dot_product_attention and a plain softmax reference: output and
dq, dk, dv, grouped and plain heads, causal and not, odd lengths; a saved forward gives the same
gradients without running the forward kernel."""

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from kernel_compare import assert_close
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode

from tunesmith.kernels.ops.attention import attention, attention_forward_only

FORWARD_OPS = {
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_flash_attention",
}  # fmt: skip


class OpCounts(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))

    def forwards(self) -> int:
        return sum(self.ops[name] for name in FORWARD_OPS)


def reference(q, k, v, scale, causal):
    """softmax(scale q k^T + mask) v in float64, k and v repeated over each group of query heads."""
    q, k, v = (x.double() for x in (q, k, v))
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    s = scale * q @ k.transpose(-1, -2)
    if causal:
        t = q.shape[2]
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return s.softmax(-1) @ v


def inputs(b, hq, hkv, t, d, device, dtype, seed=0):
    g = torch.Generator(device=device).manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, device=device, generator=g, dtype=dtype) for h in (hq, hkv, hkv))
    dout = torch.randn(b, hq, t, d, device=device, generator=g, dtype=dtype)
    return [x.requires_grad_() for x in (q, k, v)], dout


def out_and_grads(fn, qkv, dout):
    for x in qkv:
        x.grad = None
    out = fn(*qkv)
    out.backward(dout)
    return out.detach(), *(x.grad.clone() for x in qkv)


def dtype_for(device):
    return torch.bfloat16 if device == "cuda" else torch.float32  # cuda: the fused kernels' dtypes


@pytest.mark.parametrize(
    "b,hq,hkv,t,d",
    [(2, 4, 2, 37, 16), (1, 3, 3, 37, 24), (3, 6, 1, 13, 8), (1, 8, 2, 130, 64)],
)
@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_sdpa(b, hq, hkv, t, d, causal, device):
    dtype = dtype_for(device)
    qkv, dout = inputs(b, hq, hkv, t, d, device, dtype)
    scale = d**-0.5 * 1.3
    got = out_and_grads(lambda q, k, v: attention(q, k, v, scale=scale, causal=causal), qkv, dout)
    sdpa = out_and_grads(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=True),
        qkv, dout,
    )  # fmt: skip
    ref = out_and_grads(lambda q, k, v: reference(q, k, v, scale, causal), qkv, dout.double())
    rtol = 1e-5 if dtype == torch.float32 else 2e-2
    for name, g, s, r in zip(("out", "dq", "dk", "dv"), got, sdpa, ref, strict=True):
        assert_close(f"{name} vs sdpa", g, s, rtol=rtol)
        assert_close(f"{name} vs reference", g, r, rtol=rtol)


@pytest.mark.parametrize("hq,hkv,causal", [(4, 2, True), (3, 3, False)])
def test_saved_forward_gives_the_same_gradients_without_its_kernel(hq, hkv, causal, device):
    dtype = dtype_for(device)
    qkv, dout = inputs(2, hq, hkv, 37, 16, device, dtype, seed=3)
    computed = out_and_grads(lambda q, k, v: attention(q, k, v, scale=0.3, causal=causal), qkv, dout)
    out, saved = attention_forward_only(*(x.detach() for x in qkv), scale=0.3, causal=causal)
    assert saved is not None and not out.requires_grad
    with OpCounts() as counts:
        again = out_and_grads(
            lambda q, k, v: attention(q, k, v, scale=0.3, causal=causal, saved=saved), qkv, dout
        )
    assert counts.forwards() == 0  # the backward op only
    for name, a, c in zip(("out", "dq", "dk", "dv"), again, computed, strict=True):
        assert torch.equal(a, c), name
    assert torch.equal(out, computed[0])


def test_stock_path_where_no_fused_pair_applies(device):
    """Inside sdpa_kernel(MATH) the fused pair is not chosen: the stock function runs, same values,
    and there is nothing to save."""
    qkv, dout = inputs(1, 4, 2, 11, 8, device, torch.float32, seed=5)
    ref = out_and_grads(lambda q, k, v: reference(q, k, v, 0.5, True), qkv, dout.double())
    with sdpa_kernel(SDPBackend.MATH):
        got = out_and_grads(lambda q, k, v: attention(q, k, v, scale=0.5, causal=True), qkv, dout)
        out, saved = attention_forward_only(*(x.detach() for x in qkv), scale=0.5, causal=True)
    assert saved is None
    for name, g, r in zip(("out", "dq", "dk", "dv"), got, ref, strict=True):
        assert_close(name, g, r, rtol=1e-5)
    assert_close("forward only", out, ref[0], rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "backend,name", [(SDPBackend.CUDNN_ATTENTION, "cudnn"), (SDPBackend.FLASH_ATTENTION, "flash")]
)
@pytest.mark.parametrize("hq,hkv,t,d", [(8, 2, 300, 128), (4, 4, 257, 64)])
def test_each_cuda_pair_matches_sdpa_on_grouped_heads(backend, name, hq, hkv, t, d, device):
    """Each fused pair, as F.sdpa runs it inside sdpa_kernel(backend): k and v keep their Hkv heads."""
    qkv, dout = inputs(2, hq, hkv, t, d, device, torch.bfloat16, seed=7)
    with sdpa_kernel(backend):
        _, saved = attention_forward_only(*(x.detach() for x in qkv), scale=d**-0.5, causal=True)
        got = out_and_grads(lambda q, k, v: attention(q, k, v, scale=d**-0.5, causal=True), qkv, dout)
        sdpa = out_and_grads(
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
            qkv,
            dout,
        )
    assert saved is not None and saved.backend.name == name
    assert torch.equal(got[0], sdpa[0])  # the same kernel on the same inputs
    for label, g, s in zip(("dq", "dk", "dv"), got[1:], sdpa[1:], strict=True):
        assert_close(label, g, s, rtol=1e-2)
