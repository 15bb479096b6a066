"""Offloaded checkpointing against running the layers directly: outputs and every gradient, on a
chain of layers (CPU keeps the inputs; the GPU test moves them to pinned host memory and back)."""

import pytest
import torch
from kernel_compare import assert_close

from tunesmith.kernels.offload import offloaded_checkpoint, recomputing


class Layer(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a = torch.nn.Linear(d, 2 * d)
        self.b = torch.nn.Linear(2 * d, d)

    def forward(self, x, scale=1.0):
        return x + scale * self.b(torch.nn.functional.silu(self.a(x)))


def run(layers, x, checkpoint, offload):
    for layer in layers:
        x = offloaded_checkpoint(layer, x, offload=offload, scale=0.5) if checkpoint else layer(x, scale=0.5)
    return x


def check_against_plain(device, offload, x_requires_grad):
    torch.manual_seed(0)
    layers = torch.nn.ModuleList(Layer(19) for _ in range(4)).to(device)
    x = torch.randn(3, 7, 19, device=device, requires_grad=x_requires_grad)
    dy = torch.randn(3, 7, 19, device=device)
    y = run(layers, x, True, offload)
    y.backward(dy)
    grads = [p.grad.clone() for p in layers.parameters()]
    xg = x.grad.clone() if x_requires_grad else None
    layers.zero_grad()
    x.grad = None
    y_ref = run(layers, x, False, offload)
    y_ref.backward(dy)
    assert_close("y", y, y_ref)
    if x_requires_grad:
        assert_close("dx", xg, x.grad)
    for i, (g, p) in enumerate(zip(grads, layers.parameters(), strict=False)):
        assert_close(f"param{i}", g, p.grad)


@pytest.mark.parametrize("x_requires_grad", [True, False])
def test_checkpoint_matches_plain(x_requires_grad, device):
    check_against_plain(device, offload=True, x_requires_grad=x_requires_grad)


@pytest.mark.gpu
def test_offload_to_pinned_host_matches_plain(device):
    check_against_plain(device, offload=True, x_requires_grad=True)


def test_two_forwards_before_backward(device):
    torch.manual_seed(1)
    layers = torch.nn.ModuleList(Layer(11) for _ in range(3)).to(device)
    xa, xb = torch.randn(2, 5, 11, device=device), torch.randn(4, 11, device=device)
    ya, yb = run(layers, xa, True, True), run(layers, xb, True, True)
    (yb.sum() + 2 * ya.sum()).backward()
    grads = [p.grad.clone() for p in layers.parameters()]
    layers.zero_grad()
    (run(layers, xb, False, True).sum() + 2 * run(layers, xa, False, True).sum()).backward()
    for i, (g, p) in enumerate(zip(grads, layers.parameters(), strict=True)):
        assert_close(f"param{i}", g, p.grad)


def test_recomputing_flag_only_inside_a_lean_recompute(device):
    seen = []

    def fn(x):
        seen.append(recomputing())
        return x * 2

    x = torch.randn(3, device=device, requires_grad=True)
    for lean in (True, False):
        seen.clear()
        offloaded_checkpoint(fn, x, lean_recompute=lean).sum().backward()
        assert seen == [False, lean]  # the first forward never; the recompute when lean
    assert not recomputing()
