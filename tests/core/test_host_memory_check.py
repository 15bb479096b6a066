"""Before step 1 the engine refuses a batch whose layer inputs fit neither the kernels' host-memory
budget nor the GPU, with the longest length that would fit (issue 13)."""

import os

import pytest
import torch

transformers = pytest.importorskip("transformers")

from tunesmith.core.models.host_memory import host_memory_problem  # noqa: E402
from tunesmith.kernels import patch_model  # noqa: E402
from tunesmith.kernels.memory.host_budget import GIB  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "0", reason="CPU interpreter")


def tiny_llama():
    cfg = transformers.LlamaConfig(
        vocab_size=301, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(cfg).float()


def test_refuses_a_length_that_cannot_fit_and_names_the_longest():
    model = tiny_llama()
    # room for the inputs of two layers of 2 x 1024 tokens (64 wide, fp32: 512 KiB each), no GPU room
    report = patch_model(model, checkpointing="offload", host_budget_gib=2 * 512 * 1024 / GIB)
    assert (
        host_memory_problem(model, report, batch_size=2, max_length=1024, element_size=4, free_vram=0) is None
    )
    problem = host_memory_problem(model, report, batch_size=2, max_length=4096, element_size=4, free_vram=0)
    assert problem is not None
    assert "Batches of 2 x 4096 tokens" in problem and "about 1024 tokens" in problem
    # the GPU can hold what the host cannot: fits
    assert (
        host_memory_problem(model, report, batch_size=2, max_length=4096, element_size=4, free_vram=GIB)
        is None
    )


def test_no_kernels_no_check():
    model = tiny_llama()
    assert host_memory_problem(model, None, batch_size=2, max_length=10**6) is None
