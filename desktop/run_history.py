"""Read a run folder's metrics.jsonl back, so the Train tab can redraw a past run's plots.

The engine appends every event to `<run folder>/metrics.jsonl` as `{"event": kind, ...fields}` — the
same dicts the live signals carry — so replaying its "step" and "eval" lines through the plots draws
exactly what the live run drew.  Plain data, no Qt; a half-written last line (a run that was killed)
is skipped, not fatal.  A resumed run's repeated steps are kept once, the newest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"  # the engine's name for it (core.training.engine.METRICS_FILE)


@dataclass
class RunHistory:
    """What a run folder's metrics.jsonl holds, as the dicts the live signals carry."""

    path: Path
    started: dict | None = None
    steps: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    ended: dict | None = None  # the "finished" or "failed" event


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
            data = json.loads(line)
            kind = data.pop("event")
        except (ValueError, KeyError, AttributeError):
            log.warning("%s:%d is not an event line; skipped", file, number)
            continue
        if kind == "started":
            history.started = data
        elif kind == "step":
            _append_in_order(history.steps, data)
        elif kind == "eval":
            _append_in_order(history.evals, data)
        elif kind in ("finished", "failed"):
            history.ended = {"event": kind, **data}
    return history


def _append_in_order(points: list[dict], data: dict) -> None:
    """A resumed run goes on from its checkpoint, which may be before the last logged step: the
    resumed steps replace the ones logged after that checkpoint, as the live plots would show them."""
    while points and points[-1].get("step", 0) >= data.get("step", 0):
        points.pop()
    points.append(data)
