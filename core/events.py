"""Small immutable event objects that a training run reports through its callback.

The engine emits them; the desktop worker turns them into Qt signals, the CLI prints them, tests assert
on them, and every one is appended to the run's `metrics.jsonl` as `{"event": kind, ...fields}`.
This module knows nothing of torch, Qt or TRL: events carry plain numbers and strings only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base class: `kind` names the event in metrics.jsonl and in the Qt signal bridge."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "started"
    run_dir: str
    total_steps: int
    resumed_from_step: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    trainable_params: int = 0
    total_params: int = 0
    first_step: str = ""  # what step 1 does that later steps do not (core.training.first_step), or ""


@dataclass(frozen=True)
class StepMetrics(Event):
    """One logged optimizer step.  Memory is the *peak* since the previous step event (the allocator's
    highest allocated and reserved bytes over that interval, counters reset after each report; what a
    step needs at its height, not what is left between steps): GPU memory on CUDA, the highest sampled
    process RAM (RSS) on the CPU.  `memory_total_gb` is the card's (or the machine's) total."""

    kind: ClassVar[str] = "step"
    step: int
    total_steps: int
    epoch: float
    loss: float
    learning_rate: float
    grad_norm: float | None
    tokens_per_second: float
    peak_allocated_gb: float
    peak_reserved_gb: float
    memory_total_gb: float
    eta_seconds: float
    # Method-specific numbers (DPO rewards and margins, GRPO rewards, ...), name -> value.
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalMetrics(Event):
    kind: ClassVar[str] = "eval"
    step: int
    eval_loss: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine(Event):
    kind: ClassVar[str] = "log"
    level: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str


@dataclass(frozen=True)
class Finished(Event):
    """The run ended normally or was cancelled (then `cancelled` is True and a checkpoint was kept)."""

    kind: ClassVar[str] = "finished"
    run_dir: str
    adapter_dir: str
    step: int
    final_loss: float | None
    cancelled: bool = False
    last_checkpoint: str | None = None
    # Why the model is probably worse than before (a ruined or diverging loss), in words; None when fine.
    problem: str | None = None


@dataclass(frozen=True)
class Failed(Event):
    """The run could not go on.  `message` is for a person; `hint` says what to change."""

    kind: ClassVar[str] = "failed"
    message: str
    hint: str = ""
    details: str = ""  # the traceback, for the log and --debug
    run_dir: str | None = None
    last_checkpoint: str | None = None


EventCallback = Callable[[Event], None]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (RunStarted, StepMetrics, EvalMetrics, LogLine, CheckpointSaved, Finished, Failed)
}


# metrics.jsonl of runs made before the step events reported peaks: their between-steps numbers
LEGACY_FIELDS = {"memory_allocated_gb": "peak_allocated_gb", "memory_reserved_gb": "peak_reserved_gb"}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from a metrics.jsonl line (the inverse of `Event.to_dict`); older run folders'
    step lines are read with their memory numbers in the peak fields."""
    fields = dict(data)
    kind = fields.pop("event")
    if kind == StepMetrics.kind:
        fields = {LEGACY_FIELDS.get(k, k): v for k, v in fields.items()}
    return EVENT_TYPES[kind](**fields)
