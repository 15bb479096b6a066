"""The fused decode prologue (q/k RMSNorm, RoPE, KV-cache write) against the separate kernels it
replaces and against plain PyTorch, with and without q/k norms, full and partial rotary dims."""

import os

import pytest
import torch
from kernel_compare import assert_close

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="runs on the CPU interpreter"
)

from tunesmith.kernels.decode.prologue import qk_rope_to_cache  # noqa: E402


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def reference(qkv, hq, hkv, qn, kn, eps, cos, sin, d):
    b = qkv.shape[0]
    q = qkv[:, : hq * d].view(b, hq, d).float()
    k = qkv[:, hq * d : (hq + hkv) * d].view(b, hkv, d).float()
    v = qkv[:, (hq + hkv) * d :].view(b, hkv, d)
    if qn is not None:
        q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + eps) * qn.float()
        k = k * torch.rsqrt(k.pow(2).mean(-1, keepdim=True) + eps) * kn.float()
    r = cos.shape[-1]
    c, s = cos.float()[:, None], sin.float()[:, None]
    q = torch.cat([q[..., :r] * c + rotate_half(q[..., :r]) * s, q[..., r:]], dim=-1)
    k = torch.cat([k[..., :r] * c + rotate_half(k[..., :r]) * s, k[..., r:]], dim=-1)
    return q, k, v


@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("b,hq,hkv,d,r", [(3, 4, 2, 16, 16), (1, 6, 3, 24, 8), (5, 2, 2, 32, 32)])
def test_matches_plain_torch(norm, b, hq, hkv, d, r):
    torch.manual_seed(0)
    qkv = torch.randn(b, (hq + 2 * hkv) * d + 7)[:, : (hq + 2 * hkv) * d]  # a row-strided view
    qn, kn = (torch.rand(d) + 0.5, torch.rand(d) + 0.5) if norm else (None, None)
    pos = torch.randint(0, 50, (b,)).float()
    freq = 1.0 / (10000 ** (torch.arange(0, r, 2).float() / r))
    ang = torch.cat([pos[:, None] * freq, pos[:, None] * freq], dim=-1)
    cos, sin = ang.cos(), ang.sin()
    cache_k = torch.zeros(b, hkv, 9, d)
    cache_v = torch.zeros(b, hkv, 9, d)
    slot = torch.tensor([4])
    q = qk_rope_to_cache(qkv, hq, hkv, qn, kn, 1e-6, cos, sin, cache_k, cache_v, slot)
    rq, rk, rv = reference(qkv, hq, hkv, qn, kn, 1e-6, cos, sin, d)
    assert_close("q", q, rq, rtol=1e-6)
    assert_close("k", cache_k[:, :, 4], rk, rtol=1e-6)
    assert torch.equal(cache_v[:, :, 4], rv)
    others = [i for i in range(9) if i != 4]
    assert (cache_k[:, :, others] == 0).all() and (cache_v[:, :, others] == 0).all()


def test_bf16_equals_the_separate_kernels():
    """Same roundings as rms_norm -> rope -> index_copy in bf16 (the interpreter's casts included)."""
    from tunesmith.kernels.ops.rms_norm import rms_norm
    from tunesmith.kernels.ops.rope import rope

    torch.manual_seed(1)
    b, hq, hkv, d = 3, 4, 2, 16
    qkv = torch.randn(b, (hq + 2 * hkv) * d).bfloat16()
    qn, kn = torch.rand(d).bfloat16() + 0.5, torch.rand(d).bfloat16() + 0.5
    ang = torch.rand(b, d) * 6
    cos, sin = ang.cos().bfloat16(), ang.sin().bfloat16()
    ck, cv = torch.zeros(b, hkv, 5, d).bfloat16(), torch.zeros(b, hkv, 5, d).bfloat16()
    slot = torch.tensor([2])
    q = qk_rope_to_cache(qkv, hq, hkv, qn, kn, 1e-6, cos, sin, ck, cv, slot)
    q0 = rms_norm(qkv[:, : hq * d].reshape(b, hq, d), qn, 1e-6)
    k0 = rms_norm(qkv[:, hq * d : (hq + hkv) * d].reshape(b, hkv, d), kn, 1e-6)
    rq, rk = rope(q0.reshape(b, hq, 1, d), k0.reshape(b, hkv, 1, d), cos[:, None], sin[:, None])
    assert_close("q", q.float(), rq[:, :, 0].float(), rtol=1e-2)
    assert (q.float() - rq[:, :, 0].float()).abs().max() <= 2 * 2**-7 * rq.float().abs().max()
    assert_close("k", ck[:, :, 2].float(), rk[:, :, 0].float(), rtol=1e-2)
    assert torch.equal(cv[:, :, 2], qkv[:, (hq + hkv) * d :].view(b, hkv, d))
