"""Every run of a runs folder as the Past runs list shows it: when, method, dataset, steps and how it
ended, in words ("finished", "stopped at step 3 of 5", "failed: …", "did not work: the loss …").

Reads each run's config.yaml and metrics.jsonl (the same files `run_history` replays); a folder that is
not a run is left out, a damaged one is listed as such.  Plain data, no Qt.
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
    steps: int  # the last step logged
    status: str  # how it ended, in words
    has_model: bool = False  # it saved a trained adapter: it can be chatted with

    def when(self) -> str:
        """e.g. "6 Dec 2026 10:15"."""
        moment = time.localtime(self.started_at)
        return f"{moment.tm_mday} {time.strftime('%b %Y %H:%M', moment)}"


def list_past_runs(folder: str | Path) -> list[PastRun]:
    """The runs in `folder` (folders holding a config.yaml), newest first."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    runs = [describe_run(path) for path in root.iterdir() if (path / CONFIG_FILE).is_file()]
    return sorted(runs, key=lambda run: run.started_at, reverse=True)


def describe_run(path: Path) -> PastRun:
    """One run folder's summary; a config or metrics file that cannot be read is said, not raised."""
    started_at = (path / CONFIG_FILE).stat().st_mtime
    try:
        config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8")) or {}
        train, data = dict(config.get("train") or {}), dict(config.get("data") or {})
    except (OSError, ValueError, yaml.YAMLError, AttributeError) as exc:
        log.warning("%s: its config.yaml cannot be read: %s", path, exc)
        return PastRun(path, started_at, "?", "?", 0, "damaged: its config.yaml cannot be read")
    method, dataset = str(train.get("method", "sft")), Path(str(data.get("path", "sample"))).name
    if not (path / METRICS_FILE).is_file():
        return PastRun(path, started_at, method, dataset, 0, "never started training")
    history = read_run(path)
    steps = history.steps[-1].step if history.steps else 0
    total = history.started.total_steps if history.started else None
    has_model = (path / ADAPTER_CONFIG).is_file()
    status = _status(history.ended, steps, total)
    return PastRun(path, started_at, method, dataset, steps, status, has_model)


def _status(ended: Finished | Failed | None, steps: int, total: int | None) -> str:
    of_total = f" of {total}" if total else ""
    if isinstance(ended, Failed):
        return f"failed: {ended.message}"
    if isinstance(ended, Finished) and ended.problem:
        return f"did not work: {ended.problem}"
    if isinstance(ended, Finished):
        return f"stopped at step {ended.step}{of_total}" if ended.cancelled else "finished"
    return f"ended unexpectedly at step {steps}{of_total}"  # no end line: a crash or a power cut
