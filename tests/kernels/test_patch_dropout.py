"""LoRA dropout with the kernels' offload checkpointing: the recompute of each checkpointed layer draws
the dropout masks its forward drew (kernels.memory.offload replays the random state for layers that hold a
dropout), so the loss and LoRA gradients equal stock transformers + peft with its own checkpointing
(which replays the random state too) on the same masks, per family, with the kept attention output, q/k/v
and residual stream of the recompute stash in play (SDPA)."""

import os

import pytest
import torch

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="whole-model tests run on the CPU interpreter"
)
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from kernel_compare import assert_close  # noqa: E402
from test_patch_models import CONFIGS, TARGETS, batch, build  # noqa: E402

from tunesmith.kernels import patch_model, unpatch_model  # noqa: E402

DROPOUT = 0.25
EAGER_ONLY = {"gemma2"}  # transformers has no SDPA path for it


def dropout_lora(model, targets=TARGETS):
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=DROPOUT, target_modules=targets, init_lora_weights=False
    )
    model = peft.get_peft_model(model, cfg)
    model.train()
    return model


def seeded_step(model, ids, labels, seed=1234):
    """Loss and LoRA gradients of one step with the random state set first: the same masks each time."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def stock_checkpointed(model):
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_dropout_gradients_match_stock_checkpointing(model_type):
    ids, labels = batch(31)
    attn = "eager" if model_type in EAGER_ONLY else "sdpa"
    model = stock_checkpointed(dropout_lora(build(model_type, attn=attn)))
    ref_loss, ref_grads = seeded_step(model, ids, labels)
    other_loss, _ = seeded_step(model, ids, labels, seed=99)
    assert not torch.allclose(other_loss, ref_loss)  # the masks matter
    report = patch_model(model, checkpointing="offload")
    assert report.replaced["checkpoint_offload"] == 2
    loss, grads = seeded_step(model, ids, labels)
    assert_close("loss", loss, ref_loss, rtol=1e-5)
    assert grads.keys() == ref_grads.keys() and len(grads) == 2 * 2 * len(TARGETS)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=1e-4)
    unpatch_model(model)


def test_only_layers_with_dropout_replay():
    """Without dropout nothing changes on the checkpointed path (no random state read per layer)."""
    from test_patch_models import add_lora

    def replaying(model):
        layers = model.get_base_model().model.layers
        return [
            getattr(layer._gradient_checkpointing_func, "tunesmith_replay_rng", False) for layer in layers
        ]

    model = add_lora(build("llama"))
    patch_model(model, checkpointing="offload")
    assert replaying(model) == [False, False]
    unpatch_model(model)
    model = dropout_lora(build("llama"))
    patch_model(model, checkpointing="offload")
    assert replaying(model) == [True, True]
    unpatch_model(model)


def test_dropout_added_after_patching():
    """Patched before peft added a dropout: the forward refuses (the recompute would not replay it)
    until checkpointing is installed again, as TRL's gradient_checkpointing_enable() does; then exact."""
    ids, labels = batch(32)
    ref = stock_checkpointed(dropout_lora(build("llama", attn="sdpa")))
    ref_loss, ref_grads = seeded_step(ref, ids, labels)
    model = build("llama", attn="sdpa")  # the same weights, and then the same adapters
    for p in model.parameters():
        p.requires_grad_(False)
    patch_model(model, checkpointing="offload")
    model = dropout_lora(model)
    with pytest.raises(RuntimeError, match="patch_model again"):
        seeded_step(model, ids, labels)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    loss, grads = seeded_step(model, ids, labels)
    assert_close("loss", loss, ref_loss, rtol=1e-5)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=1e-4)
    unpatch_model(model)
