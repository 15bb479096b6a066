"""Which method-specific numbers the Train tab plots, on which panel, under which name: pure, no Qt.

The engine passes TRL's own log keys through in `StepMetrics.extra` (core.training.callbacks).  DPO and
ORPO log `rewards/chosen`, `rewards/rejected`, `rewards/margins` and `rewards/accuracies`; GRPO logs
`reward` (the mean over all reward functions), `rewards/<function>/mean` for each function,
`completions/mean_length`, and `kl` when the KL weight is above 0.  Evaluations log the same keys with
an `eval_` prefix (EvalMetrics.extra).  The method is read from the keys
themselves, so a run reopened from its metrics.jsonl plots the same as a live one.  Knows nothing of
widgets or of how the numbers are drawn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Panel:
    """One plot: its title and y-axis label."""

    title: str
    y_label: str


@dataclass(frozen=True)
class Point:
    """One number of one step, bound for a curve on a panel."""

    panel: str  # key of PANELS
    curve: str  # the curve's legend name
    value: float


PANELS: dict[str, Panel] = {
    "preference": Panel("Reward: chosen vs rejected", "reward"),
    "accuracy": Panel("Chosen answer wins (accuracy)", "fraction of pairs"),
    "reward": Panel("Reward (higher is better)", "reward"),
    "length": Panel("Answer length", "tokens"),
    "kl": Panel("KL: drift from the base model", "KL"),
}

# (TRL log key, panel, curve name), in the order the curves are created.
_PREFERENCE = (
    ("rewards/chosen", "preference", "chosen"),
    ("rewards/rejected", "preference", "rejected"),
    ("rewards/margins", "preference", "margin"),
    ("rewards/accuracies", "accuracy", "accuracy"),
)
_GRPO = (
    ("reward", "reward", "mean reward"),
    ("completions/mean_length", "length", "mean length"),
    ("kl", "kl", "KL"),
)
_REWARD_FUNCTION = re.compile(r"^rewards/(?P<name>.+)/mean$")


EVAL_PREFIX = "eval_"  # the Trainer's prefix for the same numbers measured on the evaluation split
EVAL_SUFFIX = " (eval)"


def method_points(extra: dict[str, float]) -> list[Point]:
    """The plotted numbers among one step's `extra` (empty for SFT, whose extras are not plotted)."""
    points = [
        Point(panel, curve, float(extra[key])) for key, panel, curve in (*_PREFERENCE, *_GRPO) if key in extra
    ]
    for key, value in extra.items():
        match = _REWARD_FUNCTION.match(key)
        if match:  # one curve per reward function, named as the user named it
            points.append(Point("reward", match["name"], float(value)))
    return points


def eval_points(extra: dict[str, float]) -> list[Point]:
    """The same numbers from an evaluation's `extra` ("eval_rewards/margins", ...), curves marked (eval)."""
    stripped = {k[len(EVAL_PREFIX) :]: v for k, v in extra.items() if k.startswith(EVAL_PREFIX)}
    return [Point(p.panel, p.curve + EVAL_SUFFIX, p.value) for p in method_points(stripped)]
