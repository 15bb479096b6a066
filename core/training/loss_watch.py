"""Watches the training loss and says, in words, when a run has gone wrong.

A run with a learning rate of 5 "finishes" like any other: the loss climbs from about 2 to 100, the
model ends up writing gibberish, and nothing says so.  `LossWatch` reads each step's loss and answers:
- at once, when the loss is not a number (the weights are ruined: the run should stop), or when it has
  climbed far above where it started (diverging: stopping saves the user the rest of the run);
- at the end, when the loss finished above where it began (the model has probably got worse).
Each answer names the likely cause and what to change.  Pure arithmetic over floats: no torch, no TRL.

The comparison is between averages of a few steps (`window`), since single-step losses jump around.
GRPO's loss is not a measure of progress (it is near 0 and may be negative), so for it only a loss
that is not a number counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Diverging: the recent average is this many times the starting one, and at least this much above it
# (a loss of 0.1 doubling to 0.2 is noise, not divergence).
DIVERGED_RATIO = 2.0
DIVERGED_MARGIN = 1.0


@dataclass
class LossWatch:
    """Feed it each step's loss with `see(step, loss)`; ask `verdict()` when the run ends."""

    learning_rate: float
    usual_learning_rate: float  # the top of the usual range: above it, a high rate is the likely cause
    measures_progress: bool = True  # False for GRPO: only a loss that is not a number counts
    window: int = 3
    losses: list[float] = field(default_factory=list)

    def see(self, step: int, loss: float) -> str | None:
        """A problem that should stop the run now, in words; None while the loss is sane."""
        if not math.isfinite(loss):
            return (
                f"The loss became {loss} at step {step}: the model's weights are ruined and further "
                f"training cannot repair them. {self._advice()}"
            )
        self.losses.append(loss)
        if not self.measures_progress or len(self.losses) < 2 * self.window:
            return None
        start, recent = self._start(), self._recent()
        if recent > start * DIVERGED_RATIO and recent > start + DIVERGED_MARGIN:
            return (
                f"The loss climbed from {start:.2f} to {recent:.2f} by step {step}: training is diverging "
                f"and the model is getting worse. {self._advice()}"
            )
        return None

    def verdict(self) -> str | None:
        """At the end: why the run probably did not work, or None when the loss went down."""
        if not self.measures_progress or len(self.losses) < 2 * self.window:
            return None
        start, recent = self._start(), self._recent()
        if recent > start:
            return (
                f"The loss ended higher than it began ({start:.2f} at the start, {recent:.2f} at the end): "
                f"the model has probably got worse, not better. {self._advice()}"
            )
        return None

    def _start(self) -> float:
        return sum(self.losses[: self.window]) / self.window

    def _recent(self) -> float:
        return sum(self.losses[-self.window :]) / self.window

    def _advice(self) -> str:
        if self.learning_rate > self.usual_learning_rate:
            return (
                f"Likely cause: the learning rate ({self.learning_rate:g}) is far above the usual "
                f"(at most {self.usual_learning_rate:g}). Try 2e-4 for LoRA."
            )
        return f"Try a lower learning rate, e.g. {self.learning_rate / 4:.2g}, and start a new run."
