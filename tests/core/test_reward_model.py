"""GRPO against a reward model the user points to, and PPO's worded refusal (issue 15, point 5).

The reward model is built here: a tiny random Llama with a one-output score head, saved with
safetensors beside the demo model's tokenizer.  A reward file given with it scores the same answers
with the same folder through plain transformers, one answer at a time and without TRL, so the run's
two logged rewards must agree: they would not if the reward model were not what scored the answers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tunesmith.core.cli import main
from tunesmith.core.data import sample_dataset_path

REWARD_CHECK = '''
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

_TOKENIZER = AutoTokenizer.from_pretrained({folder!r})
_MODEL = AutoModelForSequenceClassification.from_pretrained({folder!r}).eval()


def reward_check(prompts, completions, **_):
    """The reward model's score of each answer, unpadded: the conversation as its template writes it."""
    scores = []
    for prompt, completion in zip(prompts, completions):
        text = _TOKENIZER.apply_chat_template(prompt + completion, tokenize=False)
        ids = _TOKENIZER(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            scores.append(float(_MODEL(**ids).logits[0, 0]))
    return scores
'''


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory, demo_tokenizer) -> Path:
    """A real (tiny, random) reward model: LlamaForSequenceClassification, num_labels 1, safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(demo_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=demo_tokenizer.pad_token_id,
    )
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():
        model.score.weight.normal_(0.0, 1.0)  # scores of order 1 that differ between answers
    folder = tmp_path_factory.mktemp("rm") / "reward-model"
    model.save_pretrained(folder, safe_serialization=True)
    demo_tokenizer.save_pretrained(folder)
    return folder


def grpo_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "train", "--method", "grpo", "--data", str(sample_dataset_path("prompts.jsonl")),
        "--max-steps", "1", "--num-generations", "2", "--batch-size", "2",
        "--max-completion-length", "8", "--lora-r", "8", "--output", str(tmp_path / "runs"), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_grpo_scores_answers_with_the_reward_model(tmp_path, reward_model_dir, capsys):
    check = tmp_path / "reward_check.py"
    check.write_text(REWARD_CHECK.format(folder=str(reward_model_dir)))
    args = grpo_args(tmp_path, "--reward-model", str(reward_model_dir), "--reward-file", str(check))
    assert main(args) == 0, capsys.readouterr().err
    run_dir = next((tmp_path / "runs").iterdir())
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    step = next(s for s in steps if s["event"] == "step")
    metrics = step.get("extra", step)
    by_model, by_check = metrics["rewards/reward-model/mean"], metrics["rewards/reward_check/mean"]
    assert by_model == pytest.approx(by_check, abs=1e-4), metrics
    assert metrics["rewards/reward-model/std"] > 1e-3  # scores that follow the answers, not a constant
    assert metrics["rewards/reward-model/std"] == pytest.approx(metrics["rewards/reward_check/std"], abs=1e-4)
    log = (run_dir / "train.log").read_text()
    assert f"Reward model {reward_model_dir}:" in log and "MiB (float32) on cpu, read-only" in log


def test_ppo_is_refused_in_words_before_anything_loads(tmp_path, reward_model_dir, capsys):
    args = ["train", "--method", "ppo", "--reward-model", str(reward_model_dir)]
    assert main([*args, "--output", str(tmp_path / "runs")]) == 2  # as every refused setting
    err = capsys.readouterr().err
    assert err.startswith("error: --method: PPO is not offered.") and err.count("\n") == 1
    assert "removed its PPOTrainer in September 2026 (huggingface/trl PR #7020)" in err
    assert "--method grpo --reward-model PATH" in err and "{train." not in err
    assert not (tmp_path / "runs").exists()


def test_a_folder_that_is_not_a_reward_model_is_named(tmp_path, reward_model_dir, demo_model_dir, capsys):
    def refusal(folder: Path) -> str:
        assert main(grpo_args(tmp_path, "--reward-model", str(folder))) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and not (tmp_path / "runs").exists()  # refused before a run folder
        return err

    causal = refusal(demo_model_dir)  # the demo model itself: a language model, not a scorer
    assert f"--reward-model: {demo_model_dir}: not a reward model: it is " in causal
    assert "LlamaForCausalLM (a language model that writes text, not one that scores it)" in causal
    two_labels = tmp_path / "classifier"
    shutil.copytree(reward_model_dir, two_labels)
    config = json.loads((two_labels / "config.json").read_text())
    config["id2label"] = {"0": "bad", "1": "good"}
    (two_labels / "config.json").write_text(json.dumps(config))
    assert "a classifier with 2 outputs (num_labels 2), not a reward model" in refusal(two_labels)
    (two_labels / "config.json").write_text((reward_model_dir / "config.json").read_text())
    (two_labels / "chat_template.jinja").unlink()
    assert f"{two_labels}: its tokenizer has no chat template" in refusal(two_labels)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (two_labels / name).unlink()
    assert f"{two_labels}: no tokenizer (tokenizer.json)" in refusal(two_labels)
    assert f"--reward-model: {tmp_path / 'nowhere'}: no such folder" in refusal(tmp_path / "nowhere")


def test_the_vram_estimate_counts_the_reward_model(reward_model_dir, demo_model_dir):
    from transformers import AutoModelForSequenceClassification

    from tunesmith.core.config import RunConfig
    from tunesmith.core.vram import GIB, estimate_vram

    config = RunConfig()
    config.train.method = "grpo"
    without = estimate_vram(config, None, model_dir=demo_model_dir)
    config.train.reward_model = str(reward_model_dir)
    with_model = estimate_vram(config, None, model_dir=demo_model_dir)
    values = AutoModelForSequenceClassification.from_pretrained(reward_model_dir).num_parameters()
    # no GPU named: the estimate is for one with bf16, 2 bytes a value, as the reward model loads there
    assert with_model.parts["reward model"] == pytest.approx(values * 2 / GIB)
    assert with_model.total_gb == pytest.approx(without.total_gb + values * 2 / GIB)
    assert "reward model" not in without.parts
