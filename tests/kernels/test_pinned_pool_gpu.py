"""On the GPU (issue 16): the pinned pool page-locks blocks of the size asked for with cudaHostRegister
(its views are pinned, copies from them are asynchronous, the GPU can read them in place); a block is
handed out again only after the copy that reads it back; an offloaded checkpoint of a few layers through
the pool gives the gradients of the plain run while torch's own pinned allocator (which rounds to a power
of two) serves none of its inputs, and a shorter step reuses the longer one's blocks."""

import pytest
import torch
from kernel_compare import assert_close

pytestmark = pytest.mark.gpu

from tunesmith.kernels.memory.host_budget import HostBudget, pinned_bytes  # noqa: E402
from tunesmith.kernels.memory.host_memory import device_view  # noqa: E402
from tunesmith.kernels.memory.offload import offloaded_checkpoint  # noqa: E402
from tunesmith.kernels.memory.pinned_pool import POOL, PinnedPool  # noqa: E402

MIB = 2**20


def test_registered_blocks_are_pinned_exact_and_readable_by_the_gpu():
    pool = PinnedPool()
    view = pool.take(5 * MIB + 1)
    assert (
        pool.page_locked(view) and view.numel() == 5 * MIB + 1
    )  # registered: torch 2.11's is_pinned says no
    assert pool.held == 6 * MIB  # torch's allocator would pin 8 MiB
    view.fill_(3)
    assert int(view.to("cuda", non_blocking=True).sum()) == 3 * view.numel()
    table = view[: 4 * MIB].view(torch.bfloat16).view(1024, 2048)  # as the embedding table uses it
    gathered = device_view(table, "cuda", page_locked=True)
    assert gathered is not None and torch.equal(gathered[[0, 1023]].cpu(), table[[0, 1023]])
    pool.give(view)
    pool.close()
    assert pool.held == 0


def test_a_block_is_handed_out_again_only_after_the_copy_that_reads_it():
    pool = PinnedPool()
    n = 8 * MIB
    block = pool.take(n)
    block.fill_(1)
    side, other = torch.cuda.Stream(), torch.cuda.Stream()
    zeros = torch.zeros(n, dtype=torch.uint8, device="cuda")
    other.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # the read back starts late (about 0.1 s of GPU time)
        back = block.to("cuda", non_blocking=True)
        done = torch.cuda.Event()
        done.record(side)
    pool.give(block, done)
    with torch.cuda.stream(other):
        again = pool.take(n, stream=other)  # the same block, its next copy ordered after `done`
        assert again.data_ptr() == block.data_ptr()
        again.copy_(zeros, non_blocking=True)
    torch.cuda.synchronize()
    assert int(back.sum()) == n  # the read saw the ones, not the zeros written after it
    assert int(again.sum()) == 0

    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)
        back = again.to("cuda", non_blocking=True)
        done = torch.cuda.Event()
        done.record(side)
    pool.give(again, done)
    assert not done.query()
    pool.take(n)  # no stream: waited for on the host
    assert done.query()
    pool.close()


class Layer(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a = torch.nn.Linear(d, 2 * d)
        self.b = torch.nn.Linear(2 * d, d)

    def forward(self, x):
        return x + self.b(torch.nn.functional.silu(self.a(x)))


def grads(layers, x, checkpoint, budget=None):
    for layer in layers:
        if checkpoint:
            x = offloaded_checkpoint(layer, x, offload=True, host_budget=budget, n_layers=len(layers))
        else:
            x = layer(x)
    x.square().mean().backward()
    out = [p.grad.clone() for p in layers.parameters()]
    layers.zero_grad(set_to_none=True)
    return out


def torch_pinned_bytes_asked() -> int:
    """The bytes torch's own pinned allocator has handed out so far (a running total: it counts small
    pinned scalars torch makes for its own copies too, so tests compare it with an input's size)."""
    return torch.cuda.host_memory_stats().get("active_bytes.allocated", 0)


def test_offloaded_layers_pin_exact_blocks_through_the_pool():
    torch.manual_seed(0)
    layers = torch.nn.ModuleList(Layer(256) for _ in range(4)).cuda()
    x = torch.randn(5000, 256, device="cuda")  # 5,120,000 bytes: 6 MiB in the pool, 8 MiB from torch
    ref = grads(layers, x, checkpoint=False)
    torch.cuda.synchronize()
    POOL.close()  # free blocks left by other tests
    held, in_use = POOL.held, POOL.in_use
    torch_pinned = torch_pinned_bytes_asked()
    budget = HostBudget(2**30)
    got = grads(layers, x, checkpoint=True, budget=budget)
    torch.cuda.synchronize()
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert_close(f"param{i}", g, r)
    assert torch_pinned_bytes_asked() - torch_pinned < x.nbytes  # no input came from torch's allocator
    assert POOL.held - held == 4 * pinned_bytes(x.nbytes) == 4 * 6 * MIB
    assert budget.peak == 4 * 6 * MIB and budget.used == 0 and POOL.in_use == in_use

    # a shorter step: its 4 MiB inputs reuse the 6 MiB blocks (the surplus counted while held)
    short = x[:4000].clone()
    ref = grads(layers, short, checkpoint=False)
    got = grads(layers, short, checkpoint=True, budget=budget)
    torch.cuda.synchronize()
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert_close(f"param{i}", g, r)
    assert POOL.held - held == 4 * 6 * MIB and budget.used == 0
    assert torch_pinned_bytes_asked() - torch_pinned < x.nbytes


def test_the_embedding_table_lives_in_a_pool_block():
    transformers = pytest.importorskip("transformers")
    from tunesmith.kernels import patch_model, unpatch_model

    cfg = transformers.LlamaConfig(
        vocab_size=5000, hidden_size=512, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, head_dim=128, tie_word_embeddings=False,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg).to("cuda", torch.bfloat16)
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.randint(0, 5000, (2, 9), device="cuda")
    ref = model.get_input_embeddings()(ids)
    POOL.close()
    in_use = POOL.in_use
    report = patch_model(model, embeddings_on_cpu=True)
    weight = model.get_input_embeddings().weight
    assert POOL.page_locked(weight.data.view(-1).view(torch.uint8)) and POOL.in_use == in_use + 1
    assert model.get_input_embeddings()._tunesmith_device_table is not None  # the GPU gathers in place
    assert report.host_budget.used == pinned_bytes(5000 * 512 * 2) == 6 * MIB  # torch's allocator: 8 MiB
    assert torch.equal(model.get_input_embeddings()(ids), ref)
    unpatch_model(model)
    assert model.get_input_embeddings().weight.is_cuda and POOL.in_use == in_use
    assert report.host_budget.used == 0
