"""SwiGLU and GeGLU (exact and tanh) against torch.nn.functional: outputs and both gradients."""

import pytest
import torch
import torch.nn.functional as F
from kernel_compare import assert_close

from tunesmith.kernels import geglu, swiglu
from tunesmith.kernels.ops.glu import glu_backward

REFS = {
    "silu": (lambda g, u: swiglu(g, u), lambda g, u: F.silu(g) * u),
    "gelu": (lambda g, u: geglu(g, u), lambda g, u: F.gelu(g) * u),
    "gelu_tanh": (lambda g, u: geglu(g, u, "tanh"), lambda g, u: F.gelu(g, approximate="tanh") * u),
}


@pytest.mark.parametrize("act", sorted(REFS))
@pytest.mark.parametrize("shape", [(37, 83), (2, 3, 1031)])
def test_glu_matches_reference(act, shape, device):
    torch.manual_seed(0)
    ours, ref = REFS[act]
    g = (3 * torch.randn(shape, device=device)).requires_grad_()
    u = torch.randn(shape, device=device, requires_grad=True)
    dh = torch.randn(shape, device=device)
    h = ours(g, u)
    h.backward(dh)
    gr, ur = g.detach().clone().requires_grad_(), u.detach().clone().requires_grad_()
    hr = ref(gr, ur)
    hr.backward(dh)
    assert_close("h", h, hr)
    assert_close("dg", g.grad, gr.grad)
    assert_close("du", u.grad, ur.grad)


def test_glu_backward_recomputes_h_in_place(device):
    g, u, dh = (torch.randn(5, 67, device=device) for _ in range(3))
    h_ref = F.silu(g) * u
    dg, du, h = glu_backward(dh, g.clone(), u.clone(), "silu", write_h=True, inplace=True)
    assert_close("h", h, h_ref)
    assert_close("du", du, dh * F.silu(g))


@pytest.mark.parametrize("shape", [(5, 67), (3, 2100)])
def test_glu_backward_h_into_dh_is_bitwise_the_forward(shape, device):
    """The fused MLP's backward (SiLU) takes h from the backward pass, written over dh: the same bits
    as glu_forward on g, u, and the same dg, du as without it."""
    from tunesmith.kernels.ops.glu import glu_forward

    torch.manual_seed(3)
    g, u, dh = (3 * torch.randn(shape, device=device) for _ in range(3))
    h_ref = glu_forward(g, u, "silu")
    dg_ref, du_ref, _ = glu_backward(dh, g, u, "silu")
    d = dh.clone()
    dg, du, h = glu_backward(d, g.clone(), u.clone(), "silu", inplace=True, h_into_dh=True)
    assert h.data_ptr() == d.data_ptr()
    assert torch.equal(h, h_ref) and torch.equal(dg, dg_ref) and torch.equal(du, du_ref)


@pytest.mark.parametrize("act", sorted(REFS))
@pytest.mark.parametrize("shape", [(37, 781), (3, 1031)])
def test_glu_bf16_matches_fp32_reference(act, shape, device):
    """bf16 in and out, fp32 inside: within bf16 rounding of the fp32 reference, output and gradients."""
    torch.manual_seed(2)
    ours, ref = REFS[act]
    g = (3 * torch.randn(shape, device=device)).bfloat16().requires_grad_()
    u = torch.randn(shape, device=device).bfloat16().requires_grad_()
    dh = torch.randn(shape, device=device).bfloat16()
    h = ours(g, u)
    h.backward(dh)
    assert h.dtype == g.grad.dtype == u.grad.dtype == torch.bfloat16
    gr, ur = g.detach().float().requires_grad_(), u.detach().float().requires_grad_()
    hr = ref(gr, ur)
    hr.backward(dh.float())
    assert_close("h", h, hr, rtol=1e-2)
    assert_close("dg", g.grad, gr.grad, rtol=1e-2)
    assert_close("du", u.grad, ur.grad, rtol=1e-2)
