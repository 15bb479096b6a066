"""The loss curve read in words (logic.curve_reading), on curves shaped like the runs the issue describes.

Synchronous: lists of numbers in, one line out.  The curves are the shapes a real run takes: a healthy
fall, a fall that has levelled off, the issue's ruined run (learning rate 5: the loss climbs from ~5 to
~100 and ends at 8), a rise after a fall, and training loss falling while the evaluation loss turns up.
"""

from __future__ import annotations

import math

import pytest

from tunesmith.desktop.logic.curve_reading import Smoother, read_loss, read_reward, smooth

STEPS = list(range(1, 61))


def falling(step: int) -> float:
    return 2.5 * math.exp(-step / 15) + 0.8 + 0.02 * math.sin(step * 1.7)


def test_smoothing_starts_at_the_first_value_and_follows_the_trend():
    values = [4.0, 2.0, 3.0, 1.0, 2.0]
    smoothed = smooth(values)
    assert smoothed[0] == pytest.approx(4.0), "debiased: the first point is not pulled towards 0"
    assert min(values) < smoothed[-1] < max(values) and smoothed[-1] < smoothed[0]
    one_by_one = Smoother()
    assert [one_by_one.add(v) for v in values] == pytest.approx(smoothed)


def test_a_healthy_fall_reads_as_falling_steadily():
    assert read_loss(STEPS, [falling(s) for s in STEPS]).startswith("Loss falling steadily (3.1")


def test_a_levelled_off_loss_reads_as_flat_for_the_last_steps():
    plateau = [2.5 * math.exp(-s / 4) + 0.8 for s in STEPS]
    text = read_loss(STEPS, plateau)
    assert text.startswith("Loss flat for the last 20 steps (at 0.8")


def test_the_issues_ruined_run_reads_as_rising_with_the_likely_cause():
    ruined = [5.1, 9.8, 31.0, 74.0, 101.0, 63.0, 22.0, 12.0, 8.0]
    text = read_loss(list(range(1, 10)), ruined)
    assert text.startswith("Loss rising") and "learning rate may be too high" in text


def test_a_rise_after_a_fall_names_the_step_it_turned():
    curve = [falling(s) + (0.06 * (s - 30) if s > 30 else 0.0) for s in STEPS]
    text = read_loss(STEPS, curve)
    assert text.startswith("Loss rising again since step 3") and "learning rate" in text


def test_evaluation_loss_turning_up_reads_as_memorising():
    evals = ([10, 20, 30, 40, 50, 60], [1.5, 1.2, 1.1, 1.15, 1.25, 1.3])
    text = read_loss(STEPS, [falling(s) for s in STEPS], *evals)
    assert "evaluation loss rising since step 30" in text and "fewer epochs" in text


def test_a_loss_that_does_not_move_and_a_short_run():
    assert read_loss(STEPS, [2.0 + 0.001 * (s % 3) for s in STEPS]).startswith("Loss flat (about 2")
    assert read_loss([1, 2, 3], [3.0, 2.0, 1.0]) == "Loss: the trend shows after a few more steps."
    assert read_loss([1, 2, 3, 4], [3.0, float("nan"), 2.0, 1.0]).startswith("Loss: the trend shows")


def test_grpos_reward_is_read_higher_is_better():
    steps = list(range(1, 11))
    assert read_reward(steps, [0.1 * s for s in steps]).startswith("Reward rising (0.1")
    assert read_reward(steps, [1.0 - 0.08 * s for s in steps]).startswith("Reward falling")
    assert read_reward(steps, [0.5] * 10).startswith("Reward flat (about 0.5)")
    assert read_reward([1, 2], [0.1, 0.2]).startswith("GRPO: watch the reward")
