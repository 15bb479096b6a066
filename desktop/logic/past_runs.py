"""Every run of a runs folder summed up for a person: when, method, dataset, steps and how it ended, in
words ("finished", "stopped at step 3 of 5", "failed: …", "did not work: the loss …"), for the Past runs
list; and the runs that saved a trained model (`trained_runs`), for the Chat tab's model picker.

Reads each run's config.yaml and metrics.jsonl (the same files `run_history` replays), again only when
they changed; a folder that is not a run is left out, a damaged one is listed as such.  Plain data, no Qt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tunesmith.core.events import Failed, Finished
from tunesmith.desktop.logic.run_history import ADAPTER_CONFIG, CONFIG_FILE, METRICS_FILE, read_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PastRun:
    """One run folder, summed up for a person."""

    path: Path
    started_at: float  # seconds since the epoch (the folder's config.yaml was written at the start)
    method: str
    dataset: str  # the dataset file's name ("sample" for the bundled one)
    steps: int  # the steps trained: the finished (or last logged) step
    status: str  # how it ended, in words
    base_source: str = ""  # the model it was trained from (config.yaml's model.source)
    stopped: bool = False  # stopped early by the user (its adapter holds the steps done)
    saved_at: float | None = None  # when its trained adapter was written; None: it saved none

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def has_model(self) -> bool:
        """It saved a trained adapter: it can be chatted with."""
        return self.saved_at is not None

    def when(self) -> str:
        """When it started, e.g. "6 Dec 2026 10:15"."""
        return _date(self.started_at)

    def label(self) -> str:
        """How the Chat tab names a trained run, e.g. "mascot-20261206-101500 · SFT · 120 steps · 6 Dec
        2026 10:17" (the date its adapter was saved)."""
        steps = f"{self.steps} step{'s' if self.steps != 1 else ''}" + (" (stopped)" if self.stopped else "")
        return f"{self.name} · {self.method.upper()} · {steps} · {_date(self.saved_at or self.started_at)}"


def _date(seconds: float) -> str:
    moment = time.localtime(seconds)
    return f"{moment.tm_mday} {time.strftime('%b %Y %H:%M', moment)}"


def list_past_runs(folder: str | Path) -> list[PastRun]:
    """The runs in `folder` (folders holding a config.yaml), newest first."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    runs = [_cached(path) for path in root.iterdir() if (path / CONFIG_FILE).is_file()]
    return sorted(runs, key=lambda run: run.started_at, reverse=True)


def trained_runs(folder: str | Path) -> list[PastRun]:
    """The runs in `folder` that saved a trained model, the most recently saved first."""
    runs = [run for run in list_past_runs(folder) if run.has_model]
    return sorted(runs, key=lambda run: run.saved_at or 0.0, reverse=True)


# The Chat tab lists the runs each time it is shown: a run's files are read again only when they changed.
_SUMMARIES: dict[Path, tuple[tuple[int, ...], PastRun]] = {}


def _cached(path: Path) -> PastRun:
    files = (path / ADAPTER_CONFIG, path / METRICS_FILE, path / CONFIG_FILE)
    stamp = tuple(file.stat().st_mtime_ns if file.exists() else 0 for file in files)
    cached = _SUMMARIES.get(path)
    if cached is None or cached[0] != stamp:
        cached = _SUMMARIES[path] = (stamp, describe_run(path))
    return cached[1]


def describe_run(path: Path) -> PastRun:
    """One run folder's summary; a config or metrics file that cannot be read is said, not raised."""
    started_at = (path / CONFIG_FILE).stat().st_mtime
    try:
        config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8")) or {}
        train, data, model = (dict(config.get(key) or {}) for key in ("train", "data", "model"))
    except (OSError, ValueError, yaml.YAMLError, AttributeError) as exc:
        log.warning("%s: its config.yaml cannot be read: %s", path, exc)
        return PastRun(path, started_at, "?", "?", 0, "damaged: its config.yaml cannot be read")
    method, dataset = str(train.get("method", "sft")), Path(str(data.get("path", "sample"))).name
    base_source = str(model.get("source", ""))
    adapter = path / ADAPTER_CONFIG
    saved_at = adapter.stat().st_mtime if adapter.is_file() else None
    if not (path / METRICS_FILE).is_file():
        return PastRun(
            path, started_at, method, dataset, 0, "never started training", base_source, saved_at=saved_at
        )
    history = read_run(path)
    ended = history.ended
    last_logged = history.steps[-1].step if history.steps else 0
    steps = ended.step if isinstance(ended, Finished) else last_logged
    total = history.started.total_steps if history.started else None
    stopped = isinstance(ended, Finished) and ended.cancelled
    status = _status(ended, steps, total)
    return PastRun(path, started_at, method, dataset, steps, status, base_source, stopped, saved_at)


def _status(ended: Finished | Failed | None, steps: int, total: int | None) -> str:
    of_total = f" of {total}" if total else ""
    if isinstance(ended, Failed):
        return f"failed: {ended.message}"
    if isinstance(ended, Finished) and ended.problem:
        return f"did not work: {ended.problem}"
    if isinstance(ended, Finished):
        return f"stopped at step {ended.step}{of_total}" if ended.cancelled else "finished"
    return f"ended unexpectedly at step {steps}{of_total}"  # no end line: a crash or a power cut
