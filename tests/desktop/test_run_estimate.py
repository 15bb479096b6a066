"""The estimate of a run's steps and time before Start (logic.run_estimate).

Checked against a real run: the GRPO run recorded from the CLI (tests/desktop/data/grpo_run) logged its
total steps and, at each step, the fraction of an epoch done, which the estimate must reproduce from the
run's own config.yaml and its dataset's row count.  SFT counts on the bundled identity sample follow
transformers' Trainer (batches rounded up, then steps per epoch rounded up, then epochs x steps rounded
up), and the evaluation split takes its rows first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.core.config import RunConfig
from tunesmith.core.data import sample_dataset_path
from tunesmith.desktop.logic.run_estimate import estimate_for_config, estimate_run, format_minutes

GRPO_RUN = Path(__file__).parent / "data" / "grpo_run"


def rows_of(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_the_estimate_matches_what_a_real_grpo_run_logged():
    config = RunConfig.from_yaml(GRPO_RUN / "config.yaml")
    rows = rows_of(sample_dataset_path(Path(config.data.path).name))
    steps = [json.loads(line) for line in (GRPO_RUN / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s["event"] == "step"]
    estimate = estimate_for_config(config, rows)
    assert estimate.steps == steps[-1]["total_steps"] == 3
    assert estimate.epochs == pytest.approx(steps[-1]["epoch"])  # 3 of 12 prompts: a quarter pass
    assert estimate.text() == (
        "About 3 steps (25% of one pass over 12 rows, 1 row a step) · time: known after the first steps"
    )
    config.train.max_steps = -1  # the same run by epochs: one step per prompt (2 answers fill the batch)
    assert estimate_for_config(config, rows).steps == round(1 / steps[0]["epoch"]) == 12


def test_sft_steps_on_the_bundled_sample_follow_the_trainers_rounding():
    rows = rows_of(sample_dataset_path("identity.jsonl"))
    assert rows == 32
    # 16 batches of 2, 4 accumulated per step: 4 steps an epoch, 3 epochs.
    assert estimate_run(rows, batch_size=2, grad_accum=4, epochs=3).steps == 12
    # 11 batches of 3 (the last short), 2 per step: 6 steps an epoch; 1.5 epochs = 9.
    assert estimate_run(rows, batch_size=3, grad_accum=2, epochs=1.5).steps == 9
    # A quarter kept for evaluation: 24 rows train, 12 batches, 3 steps an epoch.
    held_out = estimate_run(rows, batch_size=2, grad_accum=4, epochs=3, eval_ratio=0.25)
    assert held_out.steps == 9 and held_out.train_rows == 24
    # Max steps wins over epochs.
    assert estimate_run(rows, batch_size=2, epochs=3, max_steps=5).steps == 5


def test_time_comes_from_a_known_speed_and_says_so_when_there_is_none():
    rows = rows_of(sample_dataset_path("identity.jsonl"))
    # The sample's rows are ~54 tokens (the engine logs "mean 54.4"): 3 passes of 32 rows at 10 tokens/s.
    timed = estimate_run(rows, 2, 4, 3, tokens_per_row=54.4, tokens_per_second=10.0)
    assert timed.seconds == pytest.approx(3 * 32 * 54.4 / 10.0)
    assert timed.text() == (
        "About 12 steps (3 passes over 32 rows, 8 rows a step) · about 9 min at 10 tokens/s"
    )
    untimed = estimate_run(rows, 2, 4, 3, tokens_per_row=54.4)
    assert untimed.seconds is None and untimed.text().endswith("time: known after the first steps")
    assert estimate_run(0, 2).text() == "No training rows: choose a dataset with examples in it."
    assert [format_minutes(s) for s in (30, 240, 4800, 7200)] == [
        "under a minute", "about 4 min", "about 1 h 20 min", "about 2 h",
    ]  # fmt: skip
