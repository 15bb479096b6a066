"""LossWatch: a ruined, diverging or worsening loss is named in words with its likely cause."""

from __future__ import annotations

import math

from tunesmith.core.training.loss_watch import LossWatch


def watch(lr: float = 2e-4, **kwargs) -> LossWatch:
    return LossWatch(learning_rate=lr, usual_learning_rate=1e-3, **kwargs)


def test_a_falling_loss_raises_nothing():
    w = watch()
    assert [w.see(step, loss) for step, loss in enumerate([2.5, 2.3, 2.2, 2.0, 1.8, 1.7, 1.6], 1)] == [
        None
    ] * 7
    assert w.verdict() is None


def test_a_loss_that_is_not_a_number_stops_the_run_at_once():
    w = watch()
    assert w.see(1, 2.5) is None
    problem = w.see(2, math.nan)
    assert problem.startswith("The loss became nan at step 2") and "Try a lower learning rate" in problem


def test_a_diverging_loss_is_caught_with_the_high_learning_rate_named():
    w = watch(lr=0.5)
    losses = [5.0, 11.4, 6.0, 26.7, 68.5, 40.0]  # the demo model at lr 0.5
    answers = [w.see(step, loss) for step, loss in enumerate(losses, 1)]
    assert answers[:5] == [None] * 5
    assert "climbed from 7.47 to 45.07 by step 6" in answers[5]
    assert "the learning rate (0.5) is far above the usual (at most 0.001)" in answers[5]


def test_noise_on_a_small_loss_is_not_divergence_but_ending_higher_is_reported():
    w = watch()
    for step, loss in enumerate([0.10, 0.12, 0.11, 0.25, 0.24, 0.26], 1):
        assert w.see(step, loss) is None  # more than doubled, but by far less than one unit
    verdict = w.verdict()
    assert verdict.startswith("The loss ended higher than it began (0.11 at the start, 0.25 at the end)")


def test_grpo_only_counts_a_loss_that_is_not_a_number():
    w = watch(measures_progress=False)
    assert all(w.see(step, loss) is None for step, loss in enumerate([0.0, -0.2, 3.0, 5.0, 9.0, 12.0], 1))
    assert w.verdict() is None
    assert w.see(7, math.inf) is not None
