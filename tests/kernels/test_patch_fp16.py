"""fp16 with loss scaling, as the engine trains on GPUs without bf16 (T4, V100, RTX 20xx): a small model of
each family in fp16 with fp32 LoRA adapters (peft's default), under fp16 autocast, the loss multiplied
by a loss scale before the backward and the gradients divided after (what the Trainer's GradScaler does).
The patched model with offload checkpointing is as close to the fp32 model as stock transformers in fp16
is: the kernels add no error of their own beyond fp16's rounding, and nothing overflows."""

import os

import pytest
import torch

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="whole-model tests run on the CPU interpreter"
)
pytest.importorskip("transformers")
pytest.importorskip("peft")

from test_patch_models import CONFIGS, add_lora, batch, build  # noqa: E402

from tunesmith.kernels import patch_model, unpatch_model  # noqa: E402

LOSS_SCALE = 2.0**16  # torch.amp.GradScaler's initial scale


def scaled_step(model, ids, labels, dtype):
    """(loss, LoRA gradients) of one step under autocast in `dtype` with a loss scale (fp32: none)."""
    scale = 1.0 if dtype == torch.float32 else LOSS_SCALE
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        loss = model(input_ids=ids, labels=labels).loss
    (loss * scale).backward()
    grads = {n: p.grad.float() / scale for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach().float(), grads


def fp16_lora(model_type):
    """The model as the engine loads it for fp16 compute: frozen weights fp16, the adapters fp32."""
    model = add_lora(build(model_type).half())
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    model.train()
    return model


def worst_error(grads, ref) -> float:
    """The largest gradient error relative to the largest gradient, over all LoRA weights."""
    return max(((grads[n] - ref[n]).abs().max() / ref[n].abs().max()).item() for n in ref)


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_fp16_with_loss_scaling_is_as_close_to_fp32_as_stock(model_type):
    ids, labels = batch(21)
    fp32 = add_lora(build(model_type))
    fp32.train()
    ref_loss, ref_grads = scaled_step(fp32, ids, labels, torch.float32)
    model = fp16_lora(model_type)
    stock_loss, stock_grads = scaled_step(model, ids, labels, torch.float16)
    report = patch_model(model, checkpointing="offload")
    assert report.patched and report.replaced["checkpoint_offload"] == 2
    loss, grads = scaled_step(model, ids, labels, torch.float16)
    unpatch_model(model)
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads.keys() == stock_grads.keys() == ref_grads.keys()
    stock_error, error = worst_error(stock_grads, ref_grads), worst_error(grads, ref_grads)
    print(f"{model_type}: gradient error vs fp32: stock fp16 {stock_error:.2e}, patched fp16 {error:.2e}")
    assert error <= 2 * stock_error + 1e-3
    assert abs(loss - ref_loss) <= 2 * abs(stock_loss - ref_loss) + 2e-4 * abs(ref_loss)
