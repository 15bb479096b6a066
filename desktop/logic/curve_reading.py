"""The run's curves smoothed, and read in one line of words: the loss ("loss falling steadily", "loss
flat for the last 20 steps", "loss rising: the learning rate may be too high") or, for GRPO, whose loss
hovers around 0 whatever the answers are like, the reward ("reward rising").

The smoothing is TensorBoard's: an exponential moving average with its start-up bias removed, so the
first points are not pulled towards 0.  The reading compares the smoothed curve at the start, in the
last stretch of steps and at the end, with thresholds chosen for fine-tuning losses (which fall
quickly at first, then slowly); it is a hint in words, not a judgement the run acts on.  Pure: lists of
numbers in, words out; no Qt, no engine.
"""

from __future__ import annotations

import math

import numpy as np

SMOOTHING = 0.6  # weight of the past in the moving average: visible trend, still follows a real turn
MIN_POINTS = 4  # fewer logged losses say nothing about a trend
RECENT_STEPS = 20  # "the last 20 steps": the stretch that says whether the loss still moves
FLAT = 0.02  # a change under 2% of the loss over the recent stretch reads as flat
RISING = 0.10  # 10% above the lowest smoothed loss reads as rising
NOISY = 0.15  # step-to-step scatter above 15% of the fall so far reads as "ups and downs"


class Smoother:
    """Debiased exponential moving average, one value at a time (O(1) per point, for live curves)."""

    def __init__(self, weight: float = SMOOTHING) -> None:
        self.weight = weight
        self._average = 0.0
        self._count = 0

    def add(self, value: float) -> float:
        """Take the next value; return the smoothed value at this point."""
        self._count += 1
        self._average = self.weight * self._average + (1 - self.weight) * value
        return self._average / (1 - self.weight**self._count)


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """The whole curve smoothed (what `Smoother` gives point by point)."""
    smoother = Smoother(weight)
    return [smoother.add(v) for v in values]


def read_loss(
    steps: list[float],
    losses: list[float],
    eval_steps: list[float] | None = None,
    eval_losses: list[float] | None = None,
) -> str:
    """One line about the training loss so far (and the evaluation loss, when it tells more)."""
    points = [(s, v) for s, v in zip(steps, losses, strict=True) if math.isfinite(v)]
    if len(points) < MIN_POINTS:
        return "Loss: the trend shows after a few more steps."
    xs = np.array([s for s, _ in points])
    curve = np.array(smooth([v for _, v in points]))
    start, end, lowest = curve[0], curve[-1], float(curve.min())
    scale = max(abs(start), abs(lowest), 1e-8)
    if end - lowest > RISING * scale and end > start:
        return "Loss rising above where it started: the learning rate may be too high; try half of it."
    recent = xs >= xs[-1] - RECENT_STEPS
    span = int(xs[-1] - xs[recent][0])
    fell = start - end > FLAT * scale
    if end - lowest > RISING * scale:
        turn = int(xs[int(curve.argmin())])
        return (
            f"Loss rising again since step {turn}: the learning rate may be too high, "
            "or the model is memorising your examples; try a lower learning rate or fewer epochs."
        )
    overfit = _eval_rising(eval_steps or [], eval_losses or [])
    if overfit is not None and fell:
        return (
            f"Training loss falling, but the evaluation loss rising since step {overfit}: the model is "
            "starting to memorise your examples; fewer epochs would stop near there."
        )
    if recent.sum() >= MIN_POINTS and span >= RECENT_STEPS // 2 and fell:
        window = curve[recent]
        if abs(window[0] - window[-1]) < FLAT * scale:
            return (
                f"Loss flat for the last {span} steps (at {end:.3g}): more steps at this learning rate "
                "may not help."
            )
    if fell:
        raw = np.array([v for _, v in points])
        noise = float(np.std(raw - curve))
        if noise > NOISY * (start - end):
            return f"Loss falling ({start:.3g} → {end:.3g}), with ups and downs: normal with small batches."
        return f"Loss falling steadily ({start:.3g} → {end:.3g})."
    return (
        f"Loss flat (about {end:.3g}): the model is not learning much yet; "
        "if it stays flat, try a higher learning rate."
    )


def _eval_rising(steps: list[float], losses: list[float]) -> int | None:
    """The step after which the evaluation loss rose by more than RISING / 2, or None."""
    if len(losses) < 3:
        return None
    best = int(np.argmin(losses))
    if best < len(losses) - 1 and losses[-1] > losses[best] * (1 + RISING / 2):
        return int(steps[best])
    return None


def read_reward(steps: list[float], rewards: list[float]) -> str:
    """One line about GRPO's mean reward so far (higher is better; its loss says little)."""
    values = [v for v in rewards if math.isfinite(v)]
    if len(values) < MIN_POINTS or len(values) != len(steps):
        return "GRPO: watch the reward (below), not the loss; its trend shows after a few more steps."
    curve = smooth(values)
    start, end = curve[0], curve[-1]
    scale = max(abs(start), abs(end), max(abs(v) for v in values), 1e-8)
    if end - start > FLAT * scale:
        return f"Reward rising ({start:.3g} → {end:.3g}): the answers score better as the run goes."
    if start - end > FLAT * scale:
        return f"Reward falling ({start:.3g} → {end:.3g}): the learning rate may be too high; try half of it."
    return (
        f"Reward flat (about {end:.3g}): the answers do not score better yet; check that your reward "
        "functions give different scores to different answers."
    )
