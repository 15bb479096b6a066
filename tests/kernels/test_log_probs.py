"""Fused linear log-probs against plain PyTorch (logits = h @ W^T, log_softmax): values, the logged
statistics, and the gradients of both paths (v precomputed in the forward; recompute in the backward)."""

import pytest
import torch
from kernel_compare import assert_close

from tunesmith.kernels import fused_linear_log_probs


def reference(h, w, y, temperature, softcap, scale):
    logits = (h @ w.t()).float() * scale
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    z = logits / temperature
    logp_all = torch.log_softmax(z, dim=-1)
    p = logp_all.exp()
    return {
        "log_probs": logp_all.gather(-1, y.unsqueeze(-1)).squeeze(-1),
        "entropy": -(p * logp_all).sum(-1),
        "mean_logits": z.mean(-1),
        "is_top1": z.argmax(-1) == y,
        "log_sum_sq_probs": torch.log((p * p).sum(-1)),
    }


def _inputs(device, n=37, hid=24, v=5003, train_w=False):
    torch.manual_seed(0)
    h = torch.randn(n, hid, device=device, requires_grad=True)
    w = (0.4 * torch.randn(v, hid, device=device)).requires_grad_(train_w)
    y = torch.randint(0, v, (n,), device=device)
    y[3] = int((h[3].detach() @ w.detach().t()).argmax())  # at least one row whose label is the top-1
    return h, w, y


@pytest.mark.parametrize(
    ("temperature", "softcap", "scale", "chunk_rows"),
    [(1.0, None, 1.0, None), (0.7, None, 1.0, 10), (1.3, 4.0, 0.5, 7)],
)
def test_values_and_logprob_gradient(temperature, softcap, scale, chunk_rows, device):
    h, w, y = _inputs(device)
    out = fused_linear_log_probs(h, w, y, temperature=temperature, softcap=softcap, logit_scale=scale,
                                 chunk_rows=chunk_rows)  # fmt: skip
    g = torch.randn(h.shape[0], device=device)
    (out.log_probs * g).sum().backward()
    hr = h.detach().clone().requires_grad_()
    ref = reference(hr, w, y, temperature, softcap, scale)
    (ref["log_probs"] * g).sum().backward()
    for name in ("log_probs", "entropy", "mean_logits", "log_sum_sq_probs"):
        assert_close(name, getattr(out, name), ref[name])
    assert torch.equal(out.is_top1, ref["is_top1"]) and bool(out.is_top1[3])
    assert_close("dh", h.grad, hr.grad)


@pytest.mark.parametrize("train_w", [False, True])
def test_entropy_and_weight_gradients(train_w, device):
    """The general path: entropy in the loss, or a head weight that trains, recompute the logits."""
    h, w, y = _inputs(device, n=21, train_w=train_w)
    out = fused_linear_log_probs(h, w, y, temperature=0.9, softcap=6.0, chunk_rows=8)
    a, b = torch.randn(21, device=device), torch.randn(21, device=device)
    ((out.log_probs * a).sum() + (out.entropy * b).sum()).backward()
    hr = h.detach().clone().requires_grad_()
    wr = w.detach().clone().requires_grad_(train_w)
    ref = reference(hr, wr, y, 0.9, 6.0, 1.0)
    ((ref["log_probs"] * a).sum() + (ref["entropy"] * b).sum()).backward()
    assert_close("dh", h.grad, hr.grad)
    if train_w:
        assert_close("dw", w.grad, wr.grad)
    else:
        assert w.grad is None


def test_no_grad_scores_without_gradient_work(device):
    h, w, y = _inputs(device, n=9)
    with torch.no_grad():
        out = fused_linear_log_probs(h, w, y)
    assert not out.log_probs.requires_grad
    assert_close("log_probs", out.log_probs, reference(h.detach(), w, y, 1.0, None, 1.0)["log_probs"])


def test_rejects_bad_shapes(device):
    with pytest.raises(ValueError, match="do not fit"):
        fused_linear_log_probs(
            torch.randn(4, 8, device=device), torch.randn(10, 8, device=device),
            torch.zeros(3, dtype=torch.long, device=device),
        )  # fmt: skip
    with pytest.raises(ValueError, match="temperature"):
        fused_linear_log_probs(
            torch.randn(4, 8, device=device), torch.randn(10, 8, device=device),
            torch.zeros(4, dtype=torch.long, device=device), temperature=0.0,
        )  # fmt: skip
