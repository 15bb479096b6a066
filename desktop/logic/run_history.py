"""Read a run folder's metrics.jsonl back, so the Train tab can redraw a past run's plots, and list the
finished runs of a runs folder (`list_runs`), so the Chat tab can offer them after a restart.

The engine appends every event to `<run folder>/metrics.jsonl` as `{"event": kind, ...fields}`;
`tunesmith.core.events.event_from_dict` turns each line back into the event the live signals carried,
so replaying its step and eval events through the plots draws exactly what the live run drew.  Plain
data, no Qt; a half-written last line (a run that was killed) or a line no event reads is skipped, not
fatal.  A resumed run's repeated steps are kept once, the newest.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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


@dataclass(frozen=True)
class RunSummary:
    """One trained run of a runs folder, as the Chat tab's model picker names it."""

    path: Path
    method: str  # "sft", "dpo", ... (config.yaml's train.method)
    steps: int  # the steps trained: the last logged (or finished) step
    saved_at: float  # when its adapter was written (seconds since the epoch)
    base_source: str  # the model it was trained from (config.yaml's model.source)
    stopped: bool = False  # stopped early by the user (its adapter holds the steps done)

    @property
    def name(self) -> str:
        return self.path.name

    def label(self) -> str:
        """e.g. "mascot-20261206-101500 · SFT · 120 steps · 6 Dec 2026 10:17"."""
        when = time.localtime(self.saved_at)
        date = f"{when.tm_mday} {time.strftime('%b %Y %H:%M', when)}"
        steps = f"{self.steps} step{'s' if self.steps != 1 else ''}" + (" (stopped)" if self.stopped else "")
        return f"{self.name} · {self.method.upper()} · {steps} · {date}"


def list_runs(folder: str | Path) -> list[RunSummary]:
    """The runs in `folder` that saved a trained adapter, newest first.

    A run that failed before saving, a folder that is not a run, or a config.yaml that cannot be read is
    left out (with a log line), never an error: the list is a convenience, not a check.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        adapter_config = path / ADAPTER_CONFIG
        if not adapter_config.is_file():
            continue
        try:
            runs.append(_cached_summary(path))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.warning("%s is left out of the past runs: %s", path, exc)
    return sorted(runs, key=lambda run: run.saved_at, reverse=True)


# The Chat tab lists the runs each time it is shown: a run's files are read again only when they changed.
_SUMMARIES: dict[Path, tuple[tuple[int, ...], RunSummary]] = {}


def _cached_summary(path: Path) -> RunSummary:
    files = (path / ADAPTER_CONFIG, path / METRICS_FILE, path / CONFIG_FILE)
    stamp = tuple(file.stat().st_mtime_ns if file.exists() else 0 for file in files)
    cached = _SUMMARIES.get(path)
    if cached is None or cached[0] != stamp:
        cached = _SUMMARIES[path] = (stamp, summarize_run(path))
    return cached[1]


def summarize_run(path: str | Path) -> RunSummary:
    """The summary of one run folder (config.yaml, metrics.jsonl and its adapter's date)."""
    path = Path(path)
    config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{path / CONFIG_FILE} does not hold a run's settings")
    steps, stopped = 0, False
    if metrics_file(path).is_file():
        history = read_run(path)
        if isinstance(history.ended, Finished):
            steps, stopped = history.ended.step, history.ended.cancelled
        elif history.steps:
            steps = history.steps[-1].step
    return RunSummary(
        path=path,
        method=str((config.get("train") or {}).get("method", "sft")),
        steps=steps,
        saved_at=(path / ADAPTER_CONFIG).stat().st_mtime,
        base_source=str((config.get("model") or {}).get("source", "")),
        stopped=stopped,
    )
