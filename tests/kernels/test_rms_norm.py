"""RMSNorm, Gemma (1 + w) RMSNorm and fused add + RMSNorm against plain PyTorch: outputs and gradients."""

import pytest
import torch
from kernel_compare import assert_close

from tunesmith.kernels import add_rms_norm, rms_norm


def ref_rms(x, w, eps, offset):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * (w.float() + offset)).to(x.dtype)


@pytest.mark.parametrize("shape", [(37, 83), (2, 5, 130), (1, 3)])
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_rms_norm_matches_reference(shape, offset, device):
    torch.manual_seed(0)
    x = torch.randn(shape, device=device, requires_grad=True)
    w = torch.randn(shape[-1], device=device, requires_grad=True)
    dy = torch.randn(shape, device=device)
    y = rms_norm(x, w, 1e-5, offset)
    y.backward(dy)
    xr, wr = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    yr = ref_rms(xr, wr, 1e-5, offset)
    yr.backward(dy)
    assert_close("y", y, yr)
    assert_close("dx", x.grad, xr.grad)
    assert_close("dw", w.grad, wr.grad)


def test_rms_norm_frozen_weight_skips_dw(device):
    x = torch.randn(7, 33, device=device, requires_grad=True)
    w = torch.randn(33, device=device)
    rms_norm(x, w).sum().backward()
    assert w.grad is None and x.grad is not None


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_add_rms_norm_matches_reference(offset, device):
    torch.manual_seed(1)
    shape = (3, 13, 71)
    x = torch.randn(shape, device=device, requires_grad=True)
    r = torch.randn(shape, device=device, requires_grad=True)
    w = torch.randn(71, device=device, requires_grad=True)
    dy, dh = torch.randn(shape, device=device), torch.randn(shape, device=device)
    y, h = add_rms_norm(x, r, w, 1e-6, offset)
    (y * dy + h * dh).sum().backward()
    xr, rr, wr = (t.detach().clone().requires_grad_() for t in (x, r, w))
    hr = xr + rr
    yr = ref_rms(hr, wr, 1e-6, offset)
    (yr * dy + hr * dh).sum().backward()
    for name, a, b in [("y", y, yr), ("h", h, hr), ("dx", x.grad, xr.grad), ("dr", r.grad, rr.grad)]:
        assert_close(name, a, b)
    assert_close("dw", w.grad, wr.grad)


def test_rms_norm_rejects_wrong_weight(device):
    with pytest.raises(ValueError, match="does not match"):
        rms_norm(torch.randn(4, 8, device=device), torch.randn(7, device=device))


@pytest.mark.parametrize("shape", [(37, 781), (3, 7, 130)])
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_rms_norm_bf16_matches_fp32_reference(shape, offset, device):
    """bf16 in and out, fp32 inside: within bf16 rounding of the fp32 reference, output and gradients."""
    torch.manual_seed(1)
    x = torch.randn(shape, device=device).bfloat16().requires_grad_()
    w = (1 + 0.1 * torch.randn(shape[-1], device=device)).bfloat16().requires_grad_()
    dy = torch.randn(shape, device=device).bfloat16()
    y = rms_norm(x, w, 1e-5, offset)
    y.backward(dy)
    assert y.dtype == x.grad.dtype == w.grad.dtype == torch.bfloat16
    xr, wr = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    ref_rms(xr, wr, 1e-5, offset).backward(dy.float())
    assert_close("y", y, ref_rms(xr.detach(), wr.detach(), 1e-5, offset), rtol=1e-2)
    assert_close("dx", x.grad, xr.grad, rtol=1e-2)
    assert_close("dw", w.grad, wr.grad, rtol=1e-2)
