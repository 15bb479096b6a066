"""Fused linear cross-entropy against logits = h @ W^T + F.cross_entropy: loss, dh and dW, with
several chunks, ignored labels, soft-capping and transformers' num_items_in_batch form."""

import pytest
import torch
import torch.nn.functional as F
from kernel_compare import assert_close

from tunesmith.kernels import fused_linear_cross_entropy


def ref_loss(h, w, y, softcap, num_items):
    logits = (h @ w.t()).float()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    if num_items is None:
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1), ignore_index=-100)
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1), reduction="sum") / num_items


@pytest.mark.parametrize("softcap", [None, 3.0])
@pytest.mark.parametrize("num_items", [None, 29])
@pytest.mark.parametrize("chunk_rows", [None, 10])
def test_flce_matches_reference(softcap, num_items, chunk_rows, device):
    torch.manual_seed(0)
    b, t, hid, v = 3, 13, 37, 5003
    h = torch.randn(b, t, hid, device=device, requires_grad=True)
    w = (0.3 * torch.randn(v, hid, device=device)).requires_grad_()
    y = torch.randint(0, v, (b, t), device=device)
    y[0, :4] = -100
    y[2, -1] = -100
    loss = fused_linear_cross_entropy(h, w, y, softcap=softcap, num_items=num_items, chunk_rows=chunk_rows)
    (2.5 * loss).backward()
    hr, wr = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    lr = ref_loss(hr, wr, y, softcap, num_items)
    (2.5 * lr).backward()
    assert_close("loss", loss, lr)
    assert_close("dh", h.grad, hr.grad)
    assert_close("dw", w.grad, wr.grad)


def test_flce_frozen_weight(device):
    h = torch.randn(9, 16, device=device, requires_grad=True)
    w = torch.randn(300, 16, device=device)
    y = torch.randint(0, 300, (9,), device=device)
    fused_linear_cross_entropy(h, w, y).backward()
    assert w.grad is None and h.grad is not None


def test_flce_rejects_bad_shapes(device):
    with pytest.raises(ValueError, match="do not fit"):
        fused_linear_cross_entropy(
            torch.randn(4, 8, device=device),
            torch.randn(10, 7, device=device),
            torch.zeros(4, dtype=torch.long, device=device),
        )


@pytest.mark.parametrize("softcap", [None, 3.0])
def test_flce_bf16_matches_fp32_reference(softcap, device):
    """bf16 hidden states and head (odd sizes: 37 rows, hidden 67, vocab 1031): the loss and
    both gradients within bf16 rounding of the fp32 reference."""
    torch.manual_seed(3)
    n, hid, v = 37, 67, 1031
    h = torch.randn(n, hid, device=device).bfloat16().requires_grad_()
    w = (0.3 * torch.randn(v, hid, device=device)).bfloat16().requires_grad_()
    y = torch.randint(0, v, (n,), device=device)
    y[:3] = -100
    loss = fused_linear_cross_entropy(h, w, y, softcap=softcap, chunk_rows=16)
    loss.backward()
    assert h.grad.dtype == w.grad.dtype == torch.bfloat16
    hr, wr = h.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    lr = ref_loss(hr, wr, y, softcap, None)
    lr.backward()
    assert_close("loss", loss.float(), lr, rtol=1e-2)
    assert_close("dh", h.grad, hr.grad, rtol=2e-2)
    assert_close("dw", w.grad, wr.grad, rtol=2e-2)
