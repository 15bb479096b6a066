"""Runs that stopped before their last step and can go on: the one the app offers to resume at start-up,
and whether a run picked from the history can be resumed.

A run can be resumed when its folder holds its config.yaml and a complete checkpoint, and its
metrics.jsonl does not end with a normal finish: it was stopped (Stop, or quitting the app), failed, or
the process ended without a word (a crash or power cut).  Reads files only: no Qt, no training libraries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from tunesmith.core.config import ConfigError, RunConfig
from tunesmith.core.events import Failed, Finished
from tunesmith.core.training.checkpoint_files import latest_complete, step_of
from tunesmith.desktop.logic.run_history import CONFIG_FILE, METRICS_FILE, RunHistory, read_run

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"  # core.training.engine.CHECKPOINTS


@dataclass(frozen=True)
class ResumableRun:
    """A run that can continue from `checkpoint`, with what to tell the user about it."""

    path: Path
    config: RunConfig
    checkpoint: Path
    step: int  # the checkpoint's step: where a resume starts
    total_steps: int | None  # the run's planned steps, when it got far enough to know them
    how_it_ended: str  # "was stopped" | "failed" | "ended unexpectedly"
    history: RunHistory | None = None  # its metrics, as read to decide (the plots redraw from them)

    def offer(self) -> str:
        """e.g. "The run 20261206-101500 was stopped at step 62 of 200."."""
        of_total = f" of {self.total_steps}" if self.total_steps else ""
        return f"The run {self.path.name} {self.how_it_ended} at step {self.step}{of_total}."


def resumable(run_dir: str | Path) -> ResumableRun | None:
    """The run in `run_dir` if it can be resumed; None for a finished run or a folder that is no run."""
    path = Path(run_dir)
    checkpoint = latest_complete(path / CHECKPOINTS)
    if checkpoint is None or not (path / CONFIG_FILE).is_file():
        return None
    try:
        config = RunConfig.from_yaml(path / CONFIG_FILE)
        history = read_run(path) if (path / METRICS_FILE).is_file() else None
    except (OSError, ConfigError, yaml.YAMLError) as exc:
        log.warning("%s cannot be offered for resuming: %s", path, exc)
        return None
    ended = history.ended if history else None
    if isinstance(ended, Finished) and not ended.cancelled:
        return None  # it reached its end: there is nothing left to train
    how = {Finished: "was stopped", Failed: "failed"}.get(type(ended), "ended unexpectedly")
    total = history.started.total_steps if history and history.started else None
    return ResumableRun(path, config, checkpoint, step_of(checkpoint), total, how, history)


def newest_resumable(runs_folder: str | Path, skip: set[str] = frozenset()) -> ResumableRun | None:
    """The most recently written run of `runs_folder` that can be resumed, leaving out the folders
    named in `skip` (the ones the user already turned down)."""
    root = Path(runs_folder).expanduser()
    if not root.is_dir():
        return None
    folders = [p for p in root.iterdir() if p.is_dir() and str(p) not in skip and (p / CHECKPOINTS).is_dir()]
    for path in sorted(folders, key=_last_written, reverse=True):
        found = resumable(path)
        if found is not None:
            return found
    return None


def _last_written(path: Path) -> float:
    metrics = path / METRICS_FILE
    return (metrics if metrics.is_file() else path).stat().st_mtime
