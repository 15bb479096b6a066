"""Quitting within a bound: what runs once the window has closed, before the process ends.

The window never waits long (see `MainWindow.closeEvent`): it asks the run to stop and closes within
a few seconds.  Work may still be going on then — a model that loads (from_pretrained cannot be
interrupted), a long GRPO step, a chat model loading in the thread pool — and Python must not tear
down a QThread that still runs (Qt aborts the process).  `finish_work` asks every worker to stop and
waits for them, up to a limit: long enough for a run that was training to finish its step and save
the checkpoint it keeps on Stop, or for an export to finish its file; short when nothing is at stake
(a model loading, a preview).  If work is still
going at the limit, the caller ends the process without tearing anything down (`hard_exit`): what a
run saved before (its time-based checkpoints) is complete on disk.  Knows nothing of widgets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any

from PySide6.QtCore import QThreadPool

log = logging.getLogger(__name__)

# A run that was training: time to end its step and write the checkpoint it saves on Stop (or for an
# export to write its file).
SAVE_LIMIT_S = 120.0
# Nothing to save (a model loading, a short job): the process ends almost at once.
QUICK_LIMIT_S = 3.0


def exit_limit_s(controller: Any) -> float:
    """How long the process may keep working after the window closed."""
    training = controller.training
    saving = training.is_running() and training.training_started
    return SAVE_LIMIT_S if saving or controller.exports_running else QUICK_LIMIT_S


def finish_work(controller: Any, limit_s: float | None = None) -> bool:
    """Stop the training run and the chat, wait for them and the background jobs; True if all ended."""
    limit_s = exit_limit_s(controller) if limit_s is None else limit_s
    deadline = time.monotonic() + limit_s

    def left_ms() -> int:
        return max(0, int((deadline - time.monotonic()) * 1000))

    controller.training.stop()
    controller.chat.stop()
    ended = controller.training.wait(left_ms())
    ended = controller.chat.stop_and_wait(left_ms()) and ended
    ended = QThreadPool.globalInstance().waitForDone(left_ms()) and ended
    if not ended:
        log.warning("work still running %.0f s after the window closed: ending the process", limit_s)
    return ended


def hard_exit(status: int) -> None:
    """End the process now, with logs and output flushed, without destroying running threads."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a closed or missing stream
            stream.flush()
    os._exit(status)
