"""GRPO rollouts through the fast sampler (forced on the CPU, Triton interpreter): the installed generate
returns what transformers' generate returns for TRL's kind of call, falls back for settings it does not
apply, and a short GRPO run through the engine uses it and trains (finite loss and rewards)."""

import logging
import math
from types import SimpleNamespace

import pytest
import torch

from tunesmith.core.config import RunConfig
from tunesmith.core.data import sample_dataset_path
from tunesmith.core.events import Finished, StepMetrics
from tunesmith.core.training import rollout
from tunesmith.core.training.engine import TrainingRun

PROMPTS = ["What is the capital of France?", "Name a colour.", "Say hello to a friend in one short sentence."]


@pytest.fixture(scope="module")
def demo_lora(demo_model_dir):
    """The embedded SmolLM2 (fp32) with a LoRA adapter that is not a no-op."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32)
    model.requires_grad_(False)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                     "up_proj", "down_proj"], init_lora_weights=False)  # fmt: skip
    model = get_peft_model(model, cfg)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.mul_(0.05)
    return model


def left_padded(tokenizer):
    # padding_side for this call only: the session's shared tokenizer stays as other tests expect it
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    return enc["input_ids"], enc["attention_mask"]


def installed(model, monkeypatch):
    monkeypatch.setattr(rollout, "FORCE_ON_CPU", True)
    trainer = SimpleNamespace(model=model)
    line = rollout.install_fast_rollout(trainer, SimpleNamespace(device="cpu", kernel_report=None))
    assert "fast KV-cached sampler" in line
    return trainer


def trl_config(tokenizer, **kw):
    """The GenerationConfig TRL's GRPOTrainer builds (its generation_kwargs), greedy here."""
    from transformers import GenerationConfig

    args = dict(max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, temperature=1.0,
                top_p=1.0, top_k=0, min_p=None, repetition_penalty=1.0, cache_implementation=None)  # fmt: skip
    args.update(kw)
    return GenerationConfig(**args, disable_compile=True)


def test_greedy_completions_equal_transformers_generate(demo_lora, demo_tokenizer, monkeypatch):
    ids, mask = left_padded(demo_tokenizer)
    # 6 tokens (was 10): every token runs the 30-layer model's kernels in the interpreter
    cfg = trl_config(demo_tokenizer, max_new_tokens=6)
    stock = demo_lora.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
    trainer = installed(demo_lora, monkeypatch)
    try:
        fast = demo_lora.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
        assert rollout.installed_rollout(trainer).calls == {"fast": 1, "stock": 0}
    finally:
        rollout.remove_fast_rollout(trainer)
    assert fast.tolist() == stock.tolist()
    assert "generate" not in demo_lora.__dict__


def test_unsupported_settings_fall_back_to_stock(demo_lora, demo_tokenizer, monkeypatch, caplog):
    ids, mask = left_padded(demo_tokenizer)
    cfg = trl_config(demo_tokenizer, max_new_tokens=4, repetition_penalty=1.3)
    stock = demo_lora.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
    trainer = installed(demo_lora, monkeypatch)
    try:
        with caplog.at_level(logging.INFO, logger="tunesmith.core.training.rollout"):
            got = demo_lora.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
        assert rollout.installed_rollout(trainer).calls == {"fast": 0, "stock": 1}
    finally:
        rollout.remove_fast_rollout(trainer)
    assert got.tolist() == stock.tolist()
    assert "repetition_penalty=1.3" in caplog.text


def test_switched_off_or_without_kernels_stays_stock():
    model = SimpleNamespace(generate=None)
    trainer = SimpleNamespace(model=model)
    assert "fast_rollout is off" in rollout.install_fast_rollout(trainer, None, enabled=False)
    line = rollout.install_fast_rollout(trainer, SimpleNamespace(device="cpu", kernel_report=None))
    assert "transformers generate (no CUDA GPU)" in line
    assert rollout.installed_rollout(trainer) is None


def test_fast_rollout_setting_round_trips(tmp_path):
    config = RunConfig()
    assert config.train.fast_rollout is True
    config.train.fast_rollout = False
    config.to_yaml(tmp_path / "c.yaml")
    assert RunConfig.from_yaml(tmp_path / "c.yaml").train.fast_rollout is False


@pytest.mark.slow
def test_grpo_run_uses_the_fast_sampler(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(rollout, "FORCE_ON_CPU", True)
    config = RunConfig(output_dir=str(tmp_path / "runs"))
    config.train.method = "grpo"
    config.train.max_steps = 2
    config.train.batch_size = 2
    config.train.num_generations = 2
    # 8 tokens (the setting's least; was 12): each decode step runs every layer's kernels in the Triton
    # interpreter (~15 s a token on 2 cores); what is asserted needs no longer answers
    config.train.max_completion_length = 8
    config.train.rewards = ["length:3"]
    config.train.lr_scheduler = "constant"
    config.data.max_length = 64
    config.lora.r = 8
    config.data.path = str(sample_dataset_path("prompts.jsonl"))
    events = []
    run = TrainingRun(config, events.append)
    with caplog.at_level(logging.INFO, logger="tunesmith"):
        result = run.run()
    assert isinstance(result, Finished), getattr(result, "details", "")
    assert "GRPO rollouts: Tunesmith's fast KV-cached sampler" in caplog.text
    assert rollout.installed_rollout(run.trainer).calls["fast"] >= 2
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == [1, 2]
    for s in steps:
        assert math.isfinite(s.loss) and math.isfinite(s.extra["reward"])
