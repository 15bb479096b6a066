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

from tunesmith.kernels.ops import attention as attention_module
from tunesmith.kernels.ops.attention import attention, attention_forward_only, kv_heads_per_backward

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


def test_kv_heads_per_backward_splits_only_past_the_buffer_limit():
    q, k = (
        torch.empty(1, 32, 65536, 128, dtype=torch.bfloat16),
        torch.empty(1, 8, 65536, 128, dtype=torch.bfloat16),
    )
    # dq's fp32 accumulator and the expanded dk, dv: 32 heads x 65,536 x 128 x (4 + 2 x 2) bytes = 2 GiB
    assert kv_heads_per_backward(q, k, limit=2 << 30) == 8
    assert kv_heads_per_backward(q, k, limit=1 << 30) == 4
    assert kv_heads_per_backward(q, k, limit=3 << 28) == 2  # 768 MiB: 3 KV heads do not divide 8
    assert kv_heads_per_backward(q, k, limit=1 << 20) == 1
    short = (
        torch.empty(1, 32, 8192, 128, dtype=torch.bfloat16),
        torch.empty(1, 8, 8192, 128, dtype=torch.bfloat16),
    )
    assert kv_heads_per_backward(*short) == 8  # 256 MiB: the default limit keeps one call at 8K tokens
    plain = torch.empty(1, 4, 1000, 64), torch.empty(1, 4, 1000, 64)
    assert kv_heads_per_backward(*plain, limit=1000 * 64 * 4 * 2) == 2  # no expansion without grouping


@pytest.mark.parametrize("hq,hkv,causal", [(8, 4, True), (6, 3, False), (4, 4, True)])
def test_backward_over_head_groups_equals_the_one_call_backward(hq, hkv, causal, device, monkeypatch):
    """Past the buffer limit the backward runs a few KV heads at a time: the same dq, dk, dv, here on
    q, k, v laid out as the model's (a [B, T, H, D] projection seen as [B, H, T, D])."""
    dtype = dtype_for(device)
    g = torch.Generator(device=device).manual_seed(11)
    b, t, d = 2, 67, 32

    def heads(h):
        return torch.randn(b, t, h, d, device=device, dtype=dtype, generator=g).transpose(1, 2)

    qkv = [x.requires_grad_() for x in (heads(hq), heads(hkv), heads(hkv))]
    dout = heads(hq).contiguous()
    whole = out_and_grads(lambda q, k, v: attention(q, k, v, scale=0.2, causal=causal), qkv, dout)
    calls = []
    real = attention_module.AttentionFunction.backward

    def counting(ctx, grad):
        calls.append(kv_heads_per_backward(*ctx.saved_tensors[:2]))
        return real(ctx, grad)

    monkeypatch.setattr(attention_module, "BACKWARD_BUFFER_BYTES", 1)  # one KV head a call
    monkeypatch.setattr(attention_module.AttentionFunction, "backward", staticmethod(counting))
    split = out_and_grads(lambda q, k, v: attention(q, k, v, scale=0.2, causal=causal), qkv, dout)
    assert calls == [1]
    for name, a, w in zip(("out", "dq", "dk", "dv"), split, whole, strict=True):
        assert_close(name, a, w, rtol=1e-6 if dtype == torch.float32 else 1e-2)
    ref = out_and_grads(lambda q, k, v: reference(q, k, v, 0.2, causal), qkv, dout.double())
    for name, a, r in zip(("dq", "dk", "dv"), split[1:], ref[1:], strict=True):
        assert_close(f"{name} vs reference", a, r, rtol=1e-5 if dtype == torch.float32 else 2e-2)


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
