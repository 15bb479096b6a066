"""Our fused log-prob head in front of TRL's: on the embedded model with LoRA, inside real DPO and SFT trainers,
`model(..., labels=..., fused_lm_head=True)` gives TRL's values and the same LoRA gradients."""

import pytest
import torch

from tunesmith.core.config import RunConfig
from tunesmith.core.data import sample_dataset_path
from tunesmith.core.training.engine import TrainingRun
from tunesmith.core.training.log_probs import install_fused_log_probs

pytestmark = pytest.mark.slow


def _trainer(tmp_path, method):
    config = RunConfig(output_dir=str(tmp_path / "runs"))
    config.train.method = method
    config.train.max_steps = 1
    config.lora.r = 8
    config.data.path = str(sample_dataset_path("preferences.jsonl" if method == "dpo" else "identity.jsonl"))
    run = TrainingRun(config, lambda event: None)
    run.setup_run_dir()
    run.setup_model()
    run.setup_data()
    run.setup_trainer()
    return run.trainer


def _score(model, batch):
    model.zero_grad(set_to_none=True)
    out = model(**batch, fused_lm_head=True)
    (out.log_probs.sum() * 0.5 + out.loss).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize("method", ["dpo", "sft"])  # TRL 1.16's SFT trainer asks for the fused head too
def test_kernel_head_matches_trl_head_in_a_trainer(tmp_path, demo_tokenizer, method):
    trainer = _trainer(tmp_path, method)
    model = trainer.model
    text = ["Ahoy, who are you?", "Write one line about the sea, in plain words please."]
    enc = demo_tokenizer(text, return_tensors="pt", padding=True)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    labels[:, :3] = -100  # a prompt part that is not scored
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}

    trl_out, trl_grads = _score(model, batch)
    assert install_fused_log_probs(trainer)
    assert install_fused_log_probs(trainer)  # a second call keeps the one head
    ours, our_grads = _score(model, batch)

    assert type(ours) is type(trl_out)
    assert torch.equal(ours.label_mask, trl_out.label_mask)
    for name in ("loss", "log_probs", "entropy", "mean_logits", "log_sum_sq_probs"):  # None where TRL's is
        torch.testing.assert_close(getattr(ours, name), getattr(trl_out, name), rtol=1e-4, atol=1e-4)
    assert trl_out.entropy is not None and trl_out.log_sum_sq_probs is None  # what both ask for by default
    assert torch.equal(ours.is_top1, trl_out.is_top1)
    assert (ours.log_probs[~ours.label_mask] == 0).all() and (ours.log_probs[ours.label_mask] < 0).all()
    assert trl_grads.keys() == our_grads.keys() and any("lora_B" in n for n in our_grads)
    for name, grad in trl_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-3, atol=1e-6, msg=name)

    plain = model(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
    )  # generation path untouched
    assert plain.logits.shape[-1] == model.get_output_embeddings().weight.shape[0]
