"""What is refused before the model loads: settings, model files, data against the method, GRPO rewards.

No model is loaded here: every check reads files and settings only, which is the point of them.
"""

import json

import pytest
import torch
from safetensors.torch import save_file

from tunesmith.core.config import ConfigError, RunConfig
from tunesmith.core.data import DatasetError
from tunesmith.core.models.sources import ModelSourceError
from tunesmith.core.training.errors import explain
from tunesmith.core.training.model_files import DAMAGED, check_model_files
from tunesmith.core.training.preflight import check_run

FLAGS = {
    "train.rewards": "--reward",
    "train.reward_file": "--reward-file",
    "train.reward_model": "--reward-model",
    "train.method": "--method",
}


def grpo_config(tmp_path, rows, **train):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = RunConfig()
    config.data.path = str(path)
    config.train.method = "grpo"
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def test_grpo_without_a_reward_or_answers_is_refused_naming_both_flags(tmp_path):
    config = grpo_config(tmp_path, [{"prompt": "Say hi"}, {"prompt": "Say bye"}])
    with pytest.raises(ConfigError) as info:
        check_run(config)
    assert "choose built-in ones with train.rewards" in str(info.value)
    worded = info.value.worded(FLAGS.get)
    assert "with --reward (exact_match, format:REGEX, length:WORDS), your own with --reward-file" in worded
    assert "a reward model with --reward-model," in worded


def test_grpo_without_a_reward_scores_by_exact_match_when_prompts_have_answers(tmp_path):
    config = grpo_config(tmp_path, [{"prompt": "2+2?", "answer": "4"}, {"prompt": "Say hi"}])
    checked = check_run(config)
    assert config.train.rewards == ["exact_match"]
    notes = [note.message for note in checked.notes]
    assert notes[0].startswith("No reward chosen: each completion scores 1 when its final answer matches")
    assert notes[1] == "1 of 2 prompts have no answer: exact_match scores them 0."


def test_grpo_reward_settings_are_checked_before_loading(tmp_path):
    rows = [{"prompt": "Say hi"}]
    with pytest.raises(ConfigError, match=r"train.rewards: unknown reward 'lenght:5'"):
        check_run(grpo_config(tmp_path, rows, rewards=["lenght:5"]))
    with pytest.raises(ConfigError, match="exact_match compares with each prompt's 'answer' column"):
        check_run(grpo_config(tmp_path, rows, rewards=["exact_match"]))
    with pytest.raises(ConfigError, match=r"train.reward_file: .*nope.py: no such file"):
        check_run(grpo_config(tmp_path, rows, reward_file=str(tmp_path / "nope.py")))
    broken = tmp_path / "mine.py"
    broken.write_text("def reward(prompts, completions):\n    return [1.0 for c in completions\n")
    with pytest.raises(ConfigError, match=r"mine.py:2: '\[' was never closed"):
        check_run(grpo_config(tmp_path, rows, reward_file=str(broken)))


def test_data_of_the_wrong_kind_for_the_method_names_the_method_setting(tmp_path):
    config = grpo_config(tmp_path, [{"instruction": "q", "output": "a"}])
    config.train.method = "dpo"
    with pytest.raises(DatasetError) as info:
        check_run(config)
    assert info.value.worded(FLAGS.get) == (
        "prompts.jsonl holds alpaca data, but DPO learns from preference pairs (prompt, chosen and "
        "rejected answers): pick another file, or another method (--method)."
    )


def make_model_folder(folder, tensors=None):
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    save_file(tensors or {"w": torch.zeros(64, 64)}, str(folder / "model.safetensors"))
    return folder / "model.safetensors"


def test_model_files_are_checked_without_loading_them(tmp_path):
    weights = make_model_folder(tmp_path / "whole")
    check_model_files(str(tmp_path / "whole"))
    for cut in (weights.stat().st_size - 1, 100, 4):
        damaged = tmp_path / f"cut{cut}"
        damaged.mkdir()
        (damaged / "config.json").write_text("{}")
        (damaged / "model.safetensors").write_bytes(weights.read_bytes()[:cut])
        with pytest.raises(ModelSourceError, match=DAMAGED):
            check_model_files(str(damaged))
    sharded = tmp_path / "sharded"
    make_model_folder(sharded)
    index = {"weight_map": {"w": "model.safetensors", "v": "model-00002-of-00002.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelSourceError, match=r"model-00002-of-00002.safetensors is missing \(1 of 2"):
        check_model_files(str(sharded))
    (tmp_path / "fake.gguf").write_bytes(b"<html>404</html>")
    with pytest.raises(ModelSourceError, match="not a GGUF file"):
        check_model_files(str(tmp_path / "fake.gguf"))
    with pytest.raises(ModelSourceError, match="no such file or folder"):
        check_model_files(str(tmp_path / "missing"))


def test_a_safetensors_error_while_loading_is_said_in_words():
    from safetensors import SafetensorError

    config = RunConfig()
    config.model.source = "/models/llama"
    message, hint = explain(SafetensorError("Error while deserializing header: incomplete metadata"), config)
    assert message == f"/models/llama: {DAMAGED}"
    assert message.endswith("this model's weights file is incomplete or damaged: download it again")


def test_settings_of_the_wrong_type_are_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  learning_rate: 2e-4\n  batch_size: two\n")
    config = RunConfig.from_yaml(path)
    assert config.train.learning_rate == 2e-4  # YAML 1.1 reads 2e-4 as text; it means the number
    with pytest.raises(ConfigError) as info:
        config.validate()
    assert info.value.worded({"train.batch_size": "--batch-size"}.get) == (
        "--batch-size must be a whole number, not 'two'"
    )
    config = RunConfig()
    config.lora.target_modules = "q_proj"
    with pytest.raises(ConfigError, match=r"lora.target_modules must be a list of names, not 'q_proj'"):
        config.validate()


def test_named_choices_are_checked_before_loading():
    config = RunConfig()
    config.data.template = "chatlm"
    with pytest.raises(ConfigError, match=r"data.template must be one of chatml, "):
        check_run(config)
    config = RunConfig()
    config.data.format = "jsonl"
    with pytest.raises(ConfigError, match=r"data.format must be one of auto, alpaca, "):
        check_run(config)
