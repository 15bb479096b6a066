"""On the GPU (cuDNN or flash kernels, pinned host memory): a small Llama in bf16 with offload
checkpointing gives the same loss and LoRA gradients with the attention stash as without it, and with
the stash its recompute runs no attention forward kernel."""

import pytest
import torch
from kernel_compare import assert_close
from torch.utils._python_dispatch import TorchDispatchMode

pytestmark = pytest.mark.gpu
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from tunesmith.kernels import patch_model, unpatch_model  # noqa: E402
from tunesmith.kernels.patch import ComparisonOptions  # noqa: E402

FORWARD_OPS = {
    torch.ops.aten._scaled_dot_product_cudnn_attention.default,
    torch.ops.aten._scaled_dot_product_flash_attention.default,
}


class AttentionKernels(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.forwards = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.forwards += func in FORWARD_OPS
        return func(*args, **(kwargs or {}))


def llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=512, hidden_size=512, intermediate_size=1024, num_hidden_layers=3, num_attention_heads=8,
        num_key_value_heads=2, head_dim=64, max_position_embeddings=1024, tie_word_embeddings=False,
        attn_implementation="sdpa",
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg).to("cuda", torch.bfloat16)
    for p in model.parameters():
        p.requires_grad_(False)
    lcfg = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, init_lora_weights=False,
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])  # fmt: skip
    model = peft.get_peft_model(model, lcfg)
    model.train()
    return model


def step(model, ids, stash):
    patch_model(model, checkpointing="offload", _comparison=ComparisonOptions(stash_attention=stash))
    model.zero_grad(set_to_none=True)
    with AttentionKernels() as kernels:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    torch.cuda.synchronize()
    grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad}
    unpatch_model(model)
    return loss.detach().float(), grads, kernels.forwards


def test_attention_stash_on_the_gpu(device):
    model = llama()
    ids = torch.randint(0, 512, (2, 300), device=device, generator=torch.Generator(device).manual_seed(1))
    loss, grads, once = step(model, ids, stash=True)
    ref_loss, ref_grads, twice = step(model, ids, stash=False)
    assert (once, twice) == (3, 6)  # 3 layers: forward only with the stash, forward + recompute without
    assert_close("loss", loss, ref_loss, rtol=1e-3)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=2e-2)
