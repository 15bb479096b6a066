"""Read a run folder's metrics.jsonl back, so the Train tab can redraw a past run's plots (and
`past_runs` can say how each run ended).

The engine appends every event to `<run folder>/metrics.jsonl` as `{"event": kind, ...fields}`;
`tunesmith.core.events.event_from_dict` turns each line back into the event the live signals carried,
so replaying its step and eval events through the plots draws exactly what the live run drew.  Plain
data, no Qt; a half-written last line (a run that was killed) or a line no event reads is skipped, not
fatal.  A resumed run's repeated steps are kept once, the newest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.events import EvalMetrics, Failed, Finished, RunStarted, StepMetrics, event_from_dict

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"  # the engine's name for it (core.training.engine.METRICS_FILE)
CONFIG_FILE = "config.yaml"  # core.training.engine.CONFIG_FILE
# Written by the engine's save(): a run folder that has it holds a model to chat with.
ADAPTER_CONFIG = Path("adapter") / "adapter_config.json"


@dataclass
class RunHistory:
    """What a run folder's metrics.jsonl holds, as the events the live signals carry."""

    path: Path
    started: RunStarted | None = None
    steps: list[StepMetrics] = field(default_factory=list)
    evals: list[EvalMetrics] = field(default_factory=list)
    ended: Finished | Failed | None = None


def metrics_file(path: str | Path) -> Path:
    """The metrics.jsonl of a run folder (or the file itself)."""
    path = Path(path)
    return path / METRICS_FILE if path.is_dir() else path


def read_run(path: str | Path) -> RunHistory:
    """Parse a run folder's metrics.jsonl.  Raises FileNotFoundError when the folder has none."""
    file = metrics_file(path)
    history = RunHistory(file)
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            event = event_from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s:%d is not an event line; skipped", file, number)
            continue
        if isinstance(event, RunStarted):
            history.started = event
        elif isinstance(event, StepMetrics):
            _append_in_order(history.steps, event)
        elif isinstance(event, EvalMetrics):
            _append_in_order(history.evals, event)
        elif isinstance(event, (Finished, Failed)):
            history.ended = event
    return history


def _append_in_order(points: list, event: StepMetrics | EvalMetrics) -> None:
    """A resumed run goes on from its checkpoint, which may be before the last logged step: the
    resumed steps replace the ones logged after that checkpoint, as the live plots would show them."""
    while points and points[-1].step >= event.step:
        points.pop()
    points.append(event)
