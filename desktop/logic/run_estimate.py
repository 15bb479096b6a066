"""How long a run will be, before Start: its number of steps, and its time when a speed is known.

Steps are counted the way transformers' Trainer counts them (`Trainer.set_initial_training_values`):
batches per epoch = ceil(training rows / batch size), optimizer steps per epoch = ceil(batches /
gradient accumulation), the run = ceil(epochs x steps per epoch), unless max steps is above 0, which
wins.  The training rows are what is left after the evaluation split (`core.data.prepare.split_indices`).
GRPO's batch holds `num_generations` answers per prompt (as `core.training.methods` sets it up), so
fewer prompts fit in a step.

The time needs a speed: tokens/s measured on this machine (a previous run's) and the rows' mean length
in tokens.  Without both, the estimate says the time is known after the first steps (the progress line
then shows the real ETA).  Pure: no Qt, no model, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tunesmith.core.config import RunConfig
from tunesmith.core.data.prepare import split_indices
from tunesmith.desktop.logic.formatting import format_rate


@dataclass(frozen=True)
class RunEstimate:
    """A run's planned length: optimizer steps, passes over the data, and seconds (None: unknown)."""

    steps: int
    train_rows: int
    rows_per_step: int
    epochs: float  # how many passes over the training rows those steps make
    seconds: float | None = None
    tokens_per_second: float | None = None

    def text(self) -> str:
        """One line for the Train tab, e.g. 'About 60 steps (2 passes over 240 rows, 8 rows a step) ·
        about 4 min at 850 tokens/s'; without a speed, '… · time: known after the first steps'."""
        if self.steps <= 0:
            return "No training rows: choose a dataset with examples in it."
        rows = f"{self.train_rows:,} row{'' if self.train_rows == 1 else 's'}"
        if self.epochs < 1:  # max steps stops the run early
            passes = f"{self.epochs:.0%} of one pass over {rows}"
        else:
            passes = f"{_number(self.epochs)} pass{'' if self.epochs == 1 else 'es'} over {rows}"
        size = f"{self.rows_per_step} row{'' if self.rows_per_step == 1 else 's'} a step"
        line = f"About {self.steps:,} step{'' if self.steps == 1 else 's'} ({passes}, {size})"
        if self.seconds is None:
            return f"{line} · time: known after the first steps"
        return f"{line} · {format_minutes(self.seconds)} at {format_rate(self.tokens_per_second)}"


def estimate_run(
    rows: int,
    batch_size: int,
    grad_accum: int = 1,
    epochs: float = 1.0,
    max_steps: int = -1,
    eval_ratio: float = 0.0,
    tokens_per_row: float | None = None,
    tokens_per_second: float | None = None,
    seed: int = 42,
) -> RunEstimate:
    """Steps (and time, when `tokens_per_row` and `tokens_per_second` are both known) of a run over
    `rows` examples; `batch_size` x `grad_accum` rows make one optimizer step."""
    train_rows = len(split_indices(rows, eval_ratio, seed)[0]) if rows > 0 else 0
    batch_size, grad_accum = max(1, batch_size), max(1, grad_accum)
    rows_per_step = batch_size * grad_accum
    per_epoch = math.ceil(math.ceil(train_rows / batch_size) / grad_accum)
    if train_rows <= 0:
        steps = 0
    elif max_steps > 0:
        steps = max_steps
    else:
        steps = math.ceil(epochs * per_epoch)
    passes = steps / per_epoch if per_epoch else 0.0
    seconds = None
    if steps and tokens_per_row and tokens_per_second and tokens_per_row > 0 and tokens_per_second > 0:
        # The last batch of an epoch may be short: count the rows really read, not full steps.
        rows_read = min(steps * rows_per_step, math.ceil(passes * train_rows))
        seconds = rows_read * tokens_per_row / tokens_per_second
    return RunEstimate(steps, train_rows, rows_per_step, passes, seconds, tokens_per_second)


def estimate_for_config(
    config: RunConfig,
    rows: int,
    tokens_per_row: float | None = None,
    tokens_per_second: float | None = None,
) -> RunEstimate:
    """`estimate_run` with the run's settings (method, batch, accumulation, epochs, max steps, split)."""
    t = config.train
    batch = t.batch_size
    if t.method == "grpo":  # the batch holds whole groups of answers: batch / generations prompts
        generations = max(1, t.num_generations)
        batch = max(batch, generations)
        batch = max(1, (batch - batch % generations) // generations)
    return estimate_run(
        rows,
        batch,
        t.grad_accum,
        t.epochs,
        t.max_steps,
        config.data.eval_ratio,
        tokens_per_row,
        tokens_per_second,
        t.seed,
    )


def format_minutes(seconds: float) -> str:
    """A planned duration, rounded as people say it: 'under a minute', 'about 4 min', 'about 1 h 20 min'."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"


def _number(value: float) -> str:
    """1, 2.5, 0.03: a count without trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"
