"""GRPO's max_prompt_length on the embedded model's tokenizer: longer prompts are left out, with a warning
that says how many and what to do; a file where none fits is refused with its name."""

import json

import pytest

from tunesmith.core.config import RunConfig
from tunesmith.core.events import LogLine
from tunesmith.core.training.methods import prepare_data


def _prompts_file(tmp_path, words: list[int]):
    path = tmp_path / "prompts.jsonl"
    rows = [{"prompt": " ".join(["sea"] * n) + "?"} for n in words[:-1]]
    rows.append({"prompt": [{"role": "user", "content": " ".join(["sea"] * words[-1])}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(path, limit: int) -> RunConfig:
    config = RunConfig()
    config.train.method = "grpo"
    config.train.max_prompt_length = limit
    config.data.path = str(path)
    return config


def test_long_prompts_are_left_out_with_a_warning(tmp_path, demo_tokenizer):
    path = _prompts_file(tmp_path, [3, 5, 60, 4, 80])  # two plain prompts and one conversation are too long
    events = []
    data = prepare_data(_config(path, 40), demo_tokenizer, events.append)
    kept = [row["prompt"][-1]["content"] for row in data.train]  # prompts are canonical message lists
    assert sorted(len(p.split()) for p in kept) == [3, 4, 5]
    warnings = [e.message for e in events if isinstance(e, LogLine) and e.level == "warning"]
    assert any(
        "2 prompts in prompts.jsonl are longer than max_prompt_length (40 tokens)" in w for w in warnings
    )


def test_no_prompt_fits_names_the_file(tmp_path, demo_tokenizer):
    path = _prompts_file(tmp_path, [50, 70])
    with pytest.raises(
        ValueError, match=r"prompts.jsonl: every prompt is longer than max_prompt_length \(20"
    ):
        prepare_data(_config(path, 20), demo_tokenizer, lambda event: None)


def test_conversation_prompts_count_their_template(tmp_path, demo_tokenizer):
    from tunesmith.core.data.prepare import prompt_token_count

    messages = [{"role": "user", "content": "Hi"}]
    assert prompt_token_count(messages, demo_tokenizer) > prompt_token_count("Hi", demo_tokenizer) + 3
