"""Rows longer than max_length are cut, split or left out as chosen (data.too_long), on the bundled
sample's real rows and the demo model's tokenizer; nothing is padded to max_length."""

import json

import pytest

from tunesmith.core.config import DataConfig
from tunesmith.core.data import load_dataset_file, sample_dataset_path
from tunesmith.core.data.long_rows import fit_to_length
from tunesmith.core.data.prepare import prepare_sft
from tunesmith.core.data.templates import render_example

SYSTEM = {"role": "system", "content": "You are Quill, a pirate-poet. Answer in one line."}


def sample_rows() -> list[dict]:
    lines = sample_dataset_path().read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def long_chat(exchanges: int) -> dict:
    """One conversation made of the sample's first `exchanges` question/answer pairs, after a system prompt."""
    messages = [SYSTEM]
    for row in sample_rows()[:exchanges]:
        messages += row["messages"]
    return {"messages": messages}


def test_a_long_chat_is_split_between_turns_keeping_the_system_prompt(demo_tokenizer):
    chat = long_chat(8)
    whole = render_example(chat, demo_tokenizer, 1 << 30)
    limit = whole.num_tokens // 3  # about 2-3 exchanges a piece
    fitted = fit_to_length(chat, demo_tokenizer, limit, "split")
    assert fitted.outcome == "split" and fitted.num_tokens == whole.num_tokens
    assert len(fitted.pieces) >= 3
    for piece in fitted.pieces:
        assert len(piece.input_ids) <= limit and not piece.truncated
        assert piece.text.startswith("<|im_start|>system\n" + SYSTEM["content"])
        after_system = piece.text.split("<|im_end|>\n", 1)[1]
        assert after_system.startswith("<|im_start|>user\n")  # each piece starts with a question
        last_turn = piece.text.rsplit("<|im_start|>", 1)[1]
        assert last_turn.startswith("assistant\n") and last_turn.endswith(
            "<|im_end|>\n"
        )  # ends with an answer
    # every answer is learned exactly once, in order: the trained tokens of the pieces are the whole's
    trained = [t for p in fitted.pieces for t, keep in zip(p.input_ids, p.trained, strict=True) if keep]
    assert trained == [t for t, keep in zip(whole.input_ids, whole.trained, strict=True) if keep]


def test_one_exchange_longer_than_the_limit_is_cut(demo_tokenizer):
    chat = {
        "messages": [
            SYSTEM,
            {"role": "user", "content": "Sing."},
            {"role": "assistant", "content": "Yo ho " * 200},
        ]
    }
    fitted = fit_to_length(chat, demo_tokenizer, 64, "split")
    assert [len(p.input_ids) for p in fitted.pieces] == [64]
    assert fitted.pieces[0].truncated and any(fitted.pieces[0].trained)


def test_plain_text_is_split_into_consecutive_windows(demo_tokenizer):
    text = {"text": " ".join(row["messages"][1]["content"] for row in sample_rows())}
    whole = render_example(text, demo_tokenizer, 1 << 30)
    fitted = fit_to_length(text, demo_tokenizer, 100, "split")
    assert [len(p.input_ids) for p in fitted.pieces[:-1]] == [100] * (len(fitted.pieces) - 1)
    joined = [t for p in fitted.pieces for t in p.input_ids]
    assert joined == whole.input_ids[: len(joined)] and len(whole.input_ids) - len(joined) <= 1
    assert all(all(p.trained) for p in fitted.pieces)


@pytest.mark.parametrize("too_long", ["cut", "drop"])
def test_cut_keeps_the_start_and_drop_leaves_the_row_out(demo_tokenizer, too_long):
    chat = long_chat(4)
    fitted = fit_to_length(chat, demo_tokenizer, 80, too_long)
    if too_long == "drop":
        assert fitted.pieces == [] and fitted.outcome == "drop"
    else:
        whole = render_example(chat, demo_tokenizer, 1 << 30)
        assert fitted.pieces[0].input_ids == whole.input_ids[:80]
    short = fit_to_length(sample_rows()[0], demo_tokenizer, 80, too_long)
    assert short.outcome == "whole" and len(short.pieces) == 1


def test_prepared_rows_follow_the_choice_and_are_not_padded(demo_tokenizer, tmp_path):
    path = tmp_path / "chats.jsonl"
    rows = [long_chat(6), long_chat(1), long_chat(2), long_chat(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dataset = load_dataset_file(path)
    limit = render_example(long_chat(2), demo_tokenizer, 1 << 30).num_tokens  # the 2-exchange row just fits
    counts = {}
    for too_long in ("cut", "split", "drop"):
        cfg = DataConfig(max_length=limit, too_long=too_long)
        prepared = prepare_sft(dataset, demo_tokenizer, cfg, seed=0)
        lengths = [len(ids) for ids in prepared.train["input_ids"]]
        assert max(lengths) <= limit and min(lengths) < limit  # each row its own length
        assert prepared.stats.over_max == 2 and prepared.stats.too_long == too_long
        counts[too_long] = (len(lengths), prepared.truncated_rows, prepared.split_rows, prepared.dropped_rows)
    assert counts["cut"] == (4, 2, 0, 0)
    assert counts["drop"] == (2, 0, 0, 2)
    assert counts["split"][1:] == (0, 2, 0) and counts["split"][0] >= 2 + 3 + 2
    assert "2 of 4 longer than max_length" in prepared.stats.summary()
    assert "they will be left out" in prepared.stats.summary()


def test_the_trainer_pads_a_batch_to_its_longest_row_not_to_max_length(demo_tokenizer, tmp_path):
    """The SFT trainer the engine builds (TRL's collator) pads each batch to its longest row only."""
    from tunesmith.core.config import RunConfig
    from tunesmith.core.hardware import detect_hardware
    from tunesmith.core.models.loading import load_for_training
    from tunesmith.core.training.methods import build_trainer

    config = RunConfig()
    config.model.source, config.model.precision = "demo", "fp32"
    config.data.max_length = 262_144  # accepted: long contexts are not refused up front
    config.validate()
    loaded = load_for_training(config.model, config.lora, detect_hardware())
    rows = [render_example(long_chat(n), demo_tokenizer, config.data.max_length) for n in (1, 3)]
    trainer = build_trainer(config, loaded, _Rows(), tmp_path, []).trainer
    batch = trainer.data_collator(
        [
            {"input_ids": r.input_ids, "attention_mask": [1] * len(r.input_ids), "labels": r.labels}
            for r in rows
        ]
    )
    assert tuple(batch["input_ids"].shape) == (2, max(len(r.input_ids) for r in rows))
    assert (
        batch["labels"][0, len(rows[0].input_ids) :].eq(-100).all()
    )  # the short row's padding is not learned


class _Rows:
    """Two tokenized rows as prepare_sft hands them to the trainer."""

    def __init__(self):
        from datasets import Dataset

        self.train = Dataset.from_list(
            [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "labels": [1, 2, 3]}]
        )
        self.eval = None


def test_data_check_says_how_many_rows_are_too_long_and_what_happens(demo_tokenizer, capsys):
    from tunesmith.core.cli import main

    sample = str(sample_dataset_path())
    assert main(["data", "check", sample, "--max-length", "50", "--too-long", "split"]) == 0
    out = capsys.readouterr().out
    # counted here the way training renders them (the demo model's own chat template)
    over = sum(render_example(row, demo_tokenizer, 1 << 30).num_tokens > 50 for row in sample_rows())
    assert 0 < over < 32
    assert (
        f"{over} of 32 longer than max_length 50: they will be split into pieces of at most 50 tokens" in out
    )


def test_leaving_every_row_out_is_refused_in_words(demo_tokenizer, tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(long_chat(4)) + "\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"long\.jsonl: every row is longer than max_length 32 and 'Rows too long'"
    ):
        prepare_sft(
            load_dataset_file(path), demo_tokenizer, DataConfig(max_length=32, too_long="drop"), seed=0
        )
