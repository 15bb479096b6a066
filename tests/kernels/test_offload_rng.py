"""kernels.memory.offload.replaying_rng: a checkpointed function that draws random numbers (dropout) gets, in
its recompute, the random and autocast state its forward had, so its gradients are bitwise those of the
same function run without checkpointing; the caller's random state is left as the forward left it.
On the GPU machine (TRITON_INTERPRET=0) the same runs on CUDA: its generator, the copy stream."""

import pytest
import torch

from tunesmith.kernels.memory.offload import make_checkpoint_func, replaying_rng


def layer(x, w):
    """A dropout, then a matmul that autocast runs in bf16 (fp32 without it)."""
    return torch.nn.functional.dropout(x, p=0.5, training=True) @ w


def gradients(call, x, w, dy, autocast: bool):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    torch.manual_seed(5)  # every generator, CUDA's included
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        y = call(x, w)
    after = torch.cuda.get_rng_state(x.device) if x.is_cuda else torch.get_rng_state()
    y.backward(dy)
    return y.detach().float(), x.grad, w.grad, after


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("offload", [True, False])
def test_recompute_draws_the_forwards_masks(autocast, offload, device):
    torch.manual_seed(0)
    x, w, dy = (torch.randn(shape, device=device) for shape in ((6, 37), (37, 11), (6, 11)))
    func = replaying_rng(make_checkpoint_func(offload=offload))
    plain = gradients(layer, x, w, dy, autocast)
    checkpointed = gradients(lambda a, b: func(layer, a, b), x, w, dy, autocast)
    for got, want in zip(checkpointed, plain, strict=True):
        assert torch.equal(got, want)  # the forward's masks and dtypes, and the caller's random state


def test_without_replay_the_masks_differ(device):
    """What replaying_rng prevents: a plain recompute draws new masks (the gradient is wrong)."""
    torch.manual_seed(0)
    x, w, dy = (torch.randn(shape, device=device) for shape in ((6, 37), (37, 11), (6, 11)))
    func = make_checkpoint_func(offload=True)
    plain = gradients(layer, x, w, dy, False)
    checkpointed = gradients(lambda a, b: func(layer, a, b), x, w, dy, False)
    assert torch.equal(checkpointed[0], plain[0]) and not torch.equal(checkpointed[2], plain[2])


def test_replaying_keeps_the_functions_marks():
    func = make_checkpoint_func(offload=True, lean_recompute=False)
    replaying = replaying_rng(func)
    assert replaying.tunesmith_offload and not replaying.tunesmith_lean and replaying.tunesmith_replay_rng
    assert not getattr(func, "tunesmith_replay_rng", False)
