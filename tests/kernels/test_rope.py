"""RoPE against transformers-style rotate-half reference: q and k outputs and gradients, partial rotary."""

import pytest
import torch
from kernel_compare import assert_close

from tunesmith.kernels import rope


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def ref_rope(q, k, cos, sin):
    r = cos.shape[-1]
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    out = []
    for x in (q, k):
        xr, xp = x[..., :r], x[..., r:]
        out.append(torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1))
    return out


def make_cos_sin(b, t, r, device, scale=1.0):
    inv = 1.0 / (10000 ** (torch.arange(0, r, 2, device=device).float() / r))
    pos = (
        torch.arange(t, device=device).float()[None, :].expand(b, t) + torch.arange(b, device=device)[:, None]
    )
    emb = torch.cat([pos[..., None] * inv] * 2, dim=-1)
    return emb.cos() * scale, emb.sin() * scale


@pytest.mark.parametrize(
    "b,hq,hk,t,d,r,cos_batch",
    [(2, 5, 1, 13, 24, 24, 2), (1, 3, 3, 7, 20, 12, 1), (3, 4, 2, 9, 6, 6, 1)],
)
def test_rope_matches_reference(b, hq, hk, t, d, r, cos_batch, device):
    torch.manual_seed(0)
    # q/k as the attention makes them: [B, T, H, D] memory viewed as [B, H, T, D]
    q = torch.randn(b, t, hq, d, device=device).transpose(1, 2).requires_grad_()
    k = torch.randn(b, t, hk, d, device=device).transpose(1, 2).requires_grad_()
    cos, sin = make_cos_sin(cos_batch, t, r, device, scale=1.3)
    dq, dk = torch.randn_like(q), torch.randn_like(k)
    qo, ko = rope(q, k, cos, sin)
    ((qo * dq).sum() + (ko * dk).sum()).backward()
    qr, kr = q.detach().clone().requires_grad_(), k.detach().clone().requires_grad_()
    qro, kro = ref_rope(qr, kr, cos, sin)
    ((qro * dq).sum() + (kro * dk).sum()).backward()
    assert_close("q", qo, qro)
    assert_close("k", ko, kro)
    assert_close("dq", q.grad, qr.grad)
    assert_close("dk", k.grad, kr.grad)


def test_rope_rejects_odd_rot_dim(device):
    q = torch.randn(1, 2, 3, 8, device=device)
    cos = torch.randn(1, 3, 5, device=device)
    with pytest.raises(ValueError, match="even"):
        rope(q, q, cos, cos)
