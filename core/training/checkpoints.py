"""Crash-safe checkpoints: written aside, renamed only when complete, chosen with care on resume.

The Trainer writes `checkpoint-N` itself, file by file; a kill, power cut or driver reset halfway
through would leave a folder that looks like a checkpoint and is not.  So every save is redirected into
`checkpoints/.incomplete/checkpoint-N`, its files are flushed to disk, a marker listing every file and
its size is written last, and only then is the folder renamed to `checkpoints/checkpoint-N` (a rename
within one folder is atomic).  Resume takes the newest folder whose marker is present and whose files
still have their recorded sizes, and says which ones it passed over.  The last `KEEP` complete
checkpoints are kept.

This module knows the Trainer's checkpoint layout and its `_save_checkpoint` hook, nothing of events
or of the run folder around `checkpoints/`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tunesmith.core.paths import sync_folder
from tunesmith.core.training.checkpoint_files import (
    KEEP,
    MARKER,
    PREFIX,
    STAGING,
    Skipped,
    checkpoint_folders,
    choose_resume,
    latest_complete,
    problem_with,
    step_of,
)

__all__ = [
    "KEEP",
    "MARKER",
    "PREFIX",
    "STAGING",
    "CheckpointTimer",
    "Skipped",
    "checkpoint_folders",
    "choose_resume",
    "commit",
    "install_atomic_saving",
    "latest_complete",
    "problem_with",
    "prune",
    "step_of",
]


def commit(staged: Path, final: Path, step: int) -> None:
    """Flush `staged` to disk, write its marker last, and rename it to `final` in one step."""
    files = {}
    for file in sorted(p for p in staged.rglob("*") if p.is_file()):
        _fsync_file(file)
        files[file.relative_to(staged).as_posix()] = file.stat().st_size
    marker = staged / MARKER
    marker.write_text(json.dumps({"step": step, "files": files}, indent=1), encoding="utf-8")
    _fsync_file(marker)
    if final.exists():  # a resumed run saving a step again (its earlier copy was unusable): replace it
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)
    sync_folder(final.parent)


def prune(folder: Path, keep: int = KEEP) -> list[Path]:
    """Delete all but the `keep` newest complete checkpoints (older broken ones go too)."""
    complete = 0
    removed = []
    for path in checkpoint_folders(folder):
        if complete < keep and problem_with(path) is None:
            complete += 1
            continue
        if complete >= keep:  # never remove anything newer than the last complete one kept
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def install_atomic_saving(trainer: Any, keep: int = KEEP) -> None:
    """Make every checkpoint this Trainer writes crash-safe (see the module docstring).

    The Trainer names the folder from `_get_output_dir()`; for the length of one save that answers
    with the staging folder, so the Trainer's own saving code (model, optimizer, scheduler, scaler,
    RNG, trainer state, callbacks' state) runs unchanged and only the place differs.
    """
    original = trainer._save_checkpoint
    saved_steps: set[int] = set()

    def save_checkpoint(model: Any, trial: Any) -> None:
        folder = Path(trainer.args.output_dir)
        step = trainer.state.global_step
        final = folder / f"{PREFIX}{step}"
        if step in saved_steps and problem_with(final) is None:
            return  # a Stop right after a timed save: this step is already on disk
        # Several ranks (core.training.rank_main) all save into one folder: the main one prepares and
        # commits it, and all wait for each other around the Trainer's saving (no-ops in one process).
        accelerator = getattr(trainer, "accelerator", None)
        main = accelerator is None or accelerator.is_main_process
        wait = accelerator.wait_for_everyone if accelerator is not None else (lambda: None)
        staging = folder / STAGING
        staged = staging / final.name
        if main:
            shutil.rmtree(staging, ignore_errors=True)  # what a run that died while saving left there
            staging.mkdir(parents=True, exist_ok=True)
        wait()
        trainer._get_output_dir = lambda trial=None: str(staging)
        try:
            original(model, trial)
        finally:
            del trainer._get_output_dir  # the class's own method again
        wait()
        if main:
            commit(staged, final, step)
            staging.rmdir()  # empty again: its one folder became `final`
            prune(folder, keep)
        saved_steps.add(step)
        wait()

    trainer._save_checkpoint = save_checkpoint


class CheckpointTimer(TrainerCallback):
    """Asks the Trainer for a checkpoint when `seconds` of training have passed since the last one.

    Time-based rather than step-based, so a run loses at most a few minutes whatever its step time
    (a GRPO step can take a minute; an SFT step on a small model a tenth of a second).
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._last = clock()

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = self.clock()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds > 0 and self.clock() - self._last >= self.seconds:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        self._last = self.clock()


def _fsync_file(path: Path) -> None:
    # Windows flushes only handles opened for writing; POSIX flushes the file through any handle.
    with open(path, "r+b" if os.name == "nt" else "rb") as handle:
        os.fsync(handle.fileno())
