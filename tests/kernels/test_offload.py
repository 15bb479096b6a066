"""Offloaded checkpointing against running the layers directly: outputs and every gradient, on a
chain of layers (CPU keeps the inputs; the GPU test moves them to pinned host memory and back)."""

import gc
import weakref

import pytest
import torch
from kernel_compare import assert_close

from tunesmith.kernels.memory.offload import (
    keep_for_recompute,
    keeping,
    kept_for_recompute,
    offloaded_checkpoint,
    recomputing,
)


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


class KeepingLayer(Layer):
    """Keeps a transposed tensor (made from its input) and a tag in its first forward; records what its
    recompute gets back, twice asked (the second time must be None: each item is taken once)."""

    def __init__(self, d, log):
        super().__init__(d)
        self.log = log

    def forward(self, x, scale=1.0):
        if keeping():
            made = (x.detach() * 2).transpose(-1, -2)
            self.log.append(("kept", self, made.clone(), keep_for_recompute("made", (made, self, None))))
        elif recomputing():
            self.log.append(("got", self, kept_for_recompute("made"), kept_for_recompute("made")))
        return super().forward(x, scale)


def check_kept_items_reach_their_own_recompute(device, offload):
    torch.manual_seed(2)
    log = []
    layers = torch.nn.ModuleList(KeepingLayer(9, log) for _ in range(3)).to(device)
    xa, xb = torch.randn(2, 5, 9, device=device), torch.randn(4, 9, device=device)
    ya, yb = run(layers, xa, True, offload), run(layers, xb, True, offload)  # two forwards, one backward
    (yb.sum() + 2 * ya.sum()).backward()
    kept = [e for e in log if e[0] == "kept"]
    got = [e for e in log if e[0] == "got"]
    assert len(kept) == len(got) == 6 and all(e[3] for e in kept)
    for _, layer, made, _ in kept:  # each recompute got its own forward's items, exactly, in layout
        matches = [g for g in got if g[1] is layer and g[2][0].shape == made.shape]
        assert len(matches) == 1
        back, again = matches[0][2], matches[0][3]
        assert (
            torch.equal(back[0], made) and back[0].stride() == made.stride() and back[0].device == made.device
        )
        assert back[1] is layer and back[2] is None and again is None


def test_kept_items_reach_their_own_recompute(device):
    check_kept_items_reach_their_own_recompute(device, offload=True)


@pytest.mark.gpu
def test_kept_items_through_pinned_host_memory(device):
    check_kept_items_reach_their_own_recompute(device, offload=True)


@pytest.mark.parametrize("offload,lean", [(False, True), (True, False)])
def test_nothing_kept_without_offload_and_lean_recompute(offload, lean, device):
    """Device-mode checkpointing would hold kept items in VRAM for every layer; a full recompute is the
    comparison without them: neither keeps."""
    seen = []

    def fn(x):
        seen.append((keeping(), keep_for_recompute("k", (x * 2,)), kept_for_recompute("k")))
        return x * 3

    x = torch.randn(5, device=device, requires_grad=True)
    offloaded_checkpoint(fn, x, offload=offload, lean_recompute=lean).sum().backward()
    assert seen == [(False, False, None)] * 2
    assert torch.equal(x.grad, torch.full_like(x, 3.0))


def test_no_grad_forward_runs_the_layer_plainly(device):
    """Under no_grad (evaluation, TRL's reference log-probs) no backward can follow: the layer runs as
    it is, its input is not stashed and nothing is kept."""
    seen = []

    def fn(x):
        seen.append((keeping(), keep_for_recompute("k", (x * 2,))))
        return x * 3

    x = torch.randn(5, device=device)
    with torch.no_grad():
        out = offloaded_checkpoint(fn, x, offload=True, lean_recompute=True)
    assert seen == [(False, False)] and out.grad_fn is None
    assert torch.equal(out, x * 3)


def test_kept_items_not_taken_or_not_backpropagated_are_released():
    """What the recompute does not take is dropped when it ends; a forward whose graph is dropped
    without a backward leaves nothing behind either.  On the CPU, where the stash holds the item itself
    (offloading, it holds a host copy and the device tensor goes at once)."""
    device = "cpu"
    refs = []

    def fn(x):
        if keeping():
            item = torch.randn(64, device=device)
            refs.append(weakref.ref(item))
            keep_for_recompute("unused", (item,))
        return x * 3

    x = torch.randn(5, device=device, requires_grad=True)
    offloaded_checkpoint(fn, x).sum().backward()
    y = offloaded_checkpoint(fn, x)
    assert refs[1]() is not None  # held for y's backward
    del y
    gc.collect()
    assert [r() for r in refs] == [None, None]


@pytest.mark.parametrize("residual", [True, False])
def test_the_recompute_frees_an_output_only_a_residual_add_formed(residual, device):
    """The recomputed output of a layer ending in `x + f(x)` is read by nobody (its add's backward reads
    no value), so its memory is freed before the layer's backward; an output whose op may read it (tanh)
    keeps it.  Gradients equal the plain run's either way."""
    torch.manual_seed(3)
    layer = Layer(11).to(device)
    outputs = []

    def fn(x):
        out = layer(x, scale=0.5) if residual else torch.tanh(layer(x, scale=0.5))
        outputs.append(out)  # the first forward's, then the recompute's
        return out

    x = torch.randn(2, 5, 11, device=device, requires_grad=True)
    dy = torch.randn(2, 5, 11, device=device)
    offloaded_checkpoint(fn, offloaded_checkpoint(fn, x)).backward(dy)
    grads = [x.grad, *(p.grad for p in layer.parameters())]
    recomputed = outputs[2:]
    assert len(recomputed) == 2
    assert all((o.untyped_storage().size() == 0) == residual for o in recomputed)
    x2 = x.detach().clone().requires_grad_()
    layer.zero_grad()
    out = layer(x2, scale=0.5) if residual else torch.tanh(layer(x2, scale=0.5))
    (layer(out, scale=0.5) if residual else torch.tanh(layer(out, scale=0.5))).backward(dy)
    for name, a, b in zip(
        ["dx", "a.w", "a.b", "b.w", "b.b"],
        grads,
        [x2.grad, *(p.grad for p in layer.parameters())],
        strict=True,
    ):
        assert_close(name, a, b)
