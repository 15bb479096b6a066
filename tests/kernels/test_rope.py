"""RoPE against transformers-style rotate-half reference: q and k outputs and gradients, partial rotary."""

import pytest
import torch
from kernel_compare import assert_close

from tunesmith.kernels import rope
from tunesmith.kernels.ops.rope import can_rope_inplace, rope_


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


@pytest.mark.parametrize(
    "b,hq,hk,t,d,r,cos_batch,four_d",
    [(2, 5, 1, 13, 24, 24, 2, False), (1, 3, 3, 7, 20, 12, 1, True), (3, 4, 2, 9, 6, 6, 1, False)],
)
def test_rope_inplace_matches_reference(b, hq, hk, t, d, r, cos_batch, four_d, device):
    """rope_ on the projections' layout ([B, T, H * D], or [B, T, H, D] as after q/k norms): the very
    tensors come back rotated, the incoming gradients are rotated in their own memory, and values and
    gradients equal the reference (partial rotary included: pass-through dims untouched)."""
    torch.manual_seed(1)
    shape_q, shape_k = ((b, t, hq, d), (b, t, hk, d)) if four_d else ((b, t, hq * d), (b, t, hk * d))
    q_src = torch.randn(shape_q, device=device, requires_grad=True)
    k_src = torch.randn(shape_k, device=device, requires_grad=True)
    cos, sin = make_cos_sin(cos_batch, t, r, device, scale=1.3)
    q, k = q_src * 1.0, k_src * 1.0  # tensors of their own, as the fused projection returns them
    ptrs = (q.data_ptr(), k.data_ptr())
    qo, ko = rope_(q, k, cos, sin, d)
    assert qo is q and ko is k and (qo.data_ptr(), ko.data_ptr()) == ptrs
    seen = []
    qo.register_hook(seen.append)  # the gradient tensor that reaches the rotation
    dq, dk = torch.randn_like(qo), torch.randn_like(ko)
    ((qo * dq).sum() + (ko * dk).sum()).backward()

    def heads(x, h):  # [B, H, T, D] view
        return x.view(b, t, h, d).transpose(1, 2)

    qr = heads(q_src.detach().clone(), hq).requires_grad_()
    kr = heads(k_src.detach().clone(), hk).requires_grad_()
    qro, kro = ref_rope(qr, kr, cos, sin)
    ((qro * heads(dq, hq)).sum() + (kro * heads(dk, hk)).sum()).backward()
    assert_close("q", heads(qo, hq), qro)
    assert_close("k", heads(ko, hk), kro)
    assert_close("dq", heads(q_src.grad, hq), qr.grad)
    assert_close("dk", heads(k_src.grad, hk), kr.grad)
    assert_close("dq rotated in place", heads(seen[0], hq), qr.grad)


def test_rope_inplace_expanded_gradient(device):
    """A gradient that cannot be written (expanded, stride 0) is rotated into a copy."""
    q_src = torch.randn(1, 5, 2 * 8, device=device, requires_grad=True)
    k_src = torch.randn(1, 5, 8, device=device, requires_grad=True)
    cos, sin = make_cos_sin(1, 5, 8, device)
    qo, ko = rope_(q_src * 1.0, k_src * 1.0, cos, sin, 8)
    (qo.sum() + ko.sum()).backward()  # d/dq of sum: an expanded one
    qr = q_src.detach().view(1, 5, 2, 8).transpose(1, 2).clone().requires_grad_()
    kr = k_src.detach().view(1, 5, 1, 8).transpose(1, 2).clone().requires_grad_()
    sum(o.sum() for o in ref_rope(qr, kr, cos, sin)).backward()
    assert_close("dq", q_src.grad.view(1, 5, 2, 8).transpose(1, 2), qr.grad)
    assert_close("dk", k_src.grad.view(1, 5, 1, 8).transpose(1, 2), kr.grad)


def test_rope_inplace_refuses_views_and_leaves(device):
    cos, sin = make_cos_sin(1, 3, 8, device)
    y = torch.randn(1, 3, 24, device=device, requires_grad=True) * 1.0
    q, k = y[..., :16], y[..., 16:]  # views of one tensor: autograd cannot rebase both in one op
    assert not can_rope_inplace(q)
    with pytest.raises(ValueError, match="in place"):
        rope_(q, k, cos, sin, 8)
    leaf = torch.randn(1, 3, 8, device=device, requires_grad=True)
    assert not can_rope_inplace(leaf)


def test_rope_inplace_guarded_by_version_counter(device):
    """Rotating a tensor that a backward saved is caught by autograd, not silently wrong."""
    cos, sin = make_cos_sin(1, 3, 8, device)
    q = torch.randn(1, 3, 8, device=device, requires_grad=True) * 1.0
    k = torch.randn(1, 3, 8, device=device, requires_grad=True) * 1.0
    saved = q * q  # MulBackward saves q
    qo, ko = rope_(q, k, cos, sin, 8)
    with pytest.raises(RuntimeError, match="inplace"):
        (saved.sum() + qo.sum() + ko.sum()).backward()


@pytest.mark.parametrize("hq,hk,d,r", [(4, 2, 16, 16), (3, 1, 12, 8), (1, 5, 6, 6)])
def test_rope_pair_launch_is_two_single_launches(hq, hk, d, r, device):
    """The in-place path rotates q and k in one launch (grid column 1 takes k); bit-identical to one
    launch each, forward and backward, including pass-through dims and a batch-1 cos."""
    from tunesmith.kernels.ops.rope import rope_apply, rope_pair_

    torch.manual_seed(5)
    b, t = 2, 7
    cos, sin = make_cos_sin(1, t, r, device, scale=1.1)
    half = r // 2
    for backward in (False, True):
        buf = torch.randn(b, t, (hq + hk) * d + 3, device=device)  # q and k side by side, strided rows
        q = buf[..., : hq * d].view(b, t, hq, d).transpose(1, 2)
        k = buf[..., hq * d : (hq + hk) * d].view(b, t, hk, d).transpose(1, 2)
        ref = buf.clone()
        rq = ref[..., : hq * d].view(b, t, hq, d).transpose(1, 2)
        rk = ref[..., hq * d : (hq + hk) * d].view(b, t, hk, d).transpose(1, 2)
        rope_pair_(q, k, cos, sin, half, backward)
        rope_apply(rq, cos, sin, half, backward, inplace=True)
        rope_apply(rk, cos, sin, half, backward, inplace=True)
        assert torch.equal(buf, ref)


@pytest.mark.parametrize("b,hq,hk,t,d,r", [(2, 5, 1, 13, 24, 24), (1, 3, 3, 37, 20, 12)])
def test_rope_bf16_matches_fp32_reference(b, hq, hk, t, d, r, device):
    """bf16 q and k, rotated in fp32 and rounded once: within bf16 rounding of the fp32 reference."""
    torch.manual_seed(4)
    q = torch.randn(b, t, hq, d, device=device).bfloat16().transpose(1, 2).requires_grad_()
    k = torch.randn(b, t, hk, d, device=device).bfloat16().transpose(1, 2).requires_grad_()
    cos, sin = make_cos_sin(1, t, r, device)
    dq, dk = torch.randn_like(q), torch.randn_like(k)
    qo, ko = rope(q, k, cos.bfloat16(), sin.bfloat16())
    ((qo * dq).sum() + (ko * dk).sum()).backward()
    assert qo.dtype == q.grad.dtype == torch.bfloat16
    qr, kr = q.detach().float().requires_grad_(), k.detach().float().requires_grad_()
    qro, kro = ref_rope(qr, kr, cos.bfloat16().float(), sin.bfloat16().float())
    ((qro * dq.float()).sum() + (kro * dk.float()).sum()).backward()
    assert_close("q", qo, qro, rtol=1e-2)
    assert_close("k", ko, kro, rtol=1e-2)
    assert_close("dq", q.grad, qr.grad, rtol=1e-2)
    assert_close("dk", k.grad, kr.grad, rtol=1e-2)
