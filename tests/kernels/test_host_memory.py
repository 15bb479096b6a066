"""A CUDA view of pinned host memory reads the host's values; the patched model's embedding gathers
through it on the GPU and equals the stock embedding.  Off the GPU, no view is made."""

import pytest
import torch

from tunesmith.kernels.memory.host_memory import device_view

gpu = pytest.mark.gpu  # tests/kernels/conftest.py skips these off the GPU


def test_no_view_without_a_gpu_or_pinned_memory():
    t = torch.randn(7, 5)
    assert device_view(t, "cpu") is None
    assert device_view(t, "cuda") is None  # not pinned (and, on this machine, no CUDA)


@gpu
def test_device_view_gathers_what_the_host_holds():
    host = torch.randn(1001, 96, dtype=torch.bfloat16).pin_memory()
    view = device_view(host, "cuda")
    assert view is not None and view.is_cuda and view.shape == host.shape and view.dtype == host.dtype
    ids = torch.randint(0, 1001, (3, 37), device="cuda")
    got = torch.nn.functional.embedding(ids, view)
    assert torch.equal(got.cpu(), torch.nn.functional.embedding(ids.cpu(), host))
    host[5] = 1.5  # the same memory: a change on the host is what the GPU reads next
    assert torch.equal(view[5].cpu(), host[5])


@gpu
def test_patched_embedding_on_host_equals_stock():
    transformers = pytest.importorskip("transformers")
    from tunesmith.kernels import patch_model, unpatch_model

    cfg = transformers.LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, tie_word_embeddings=False,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg).to("cuda", torch.bfloat16)
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.randint(0, 300, (2, 9), device="cuda")
    ref = model.get_input_embeddings()(ids)
    report = patch_model(model, embeddings_on_cpu=True)
    assert report.replaced.get("embeddings_gathered_by_gpu") == 1
    assert model.get_input_embeddings().weight.is_pinned()
    assert torch.equal(model.get_input_embeddings()(ids), ref)
    unpatch_model(model)
    assert model.get_input_embeddings().weight.is_cuda
