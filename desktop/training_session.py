"""Start, stop and resume training runs, one at a time, and remember the last one.

`TrainingSession` owns the `TrainingWorker` and its QThread, re-emits the worker's signals so tabs can
connect once (not per run), and keeps what later steps need: the last run folder, its newest
checkpoint, and the last finished run's model and tokenizer (`tuned`, which the Chat tab talks to).

A new run (or a resume) first lets go of that model and says so (`sig_releasing`), so whoever holds it
(the chat engines) drops it too before the next model loads: one model on the GPU at a time.  It
knows nothing of widgets and does not import torch.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from tunesmith.desktop.workers.training import TrainingWorker, start_worker_thread

log = logging.getLogger(__name__)

IDLE, RUNNING, STOPPING = "idle", "running", "stopping"


class TrainingSession(QObject):
    """One run at a time; signals are the worker's, re-emitted (see TrainingWorker for payloads).

    Extra signals:
        sig_state(str):  "idle" | "running" | "stopping"
        sig_run_ended(): the worker thread is finished (after sig_finished or sig_failed)
        sig_releasing(): a new run is about to load: drop every reference to the last run's model now
                         (emitted synchronously on the GUI thread, before the worker starts)
    """

    sig_started = Signal(dict)
    sig_step = Signal(dict)
    sig_eval = Signal(dict)
    sig_log = Signal(str, str)
    sig_checkpoint = Signal(int, str)
    sig_finished = Signal(dict)
    sig_failed = Signal(dict)
    sig_state = Signal(str)
    sig_run_ended = Signal()
    sig_releasing = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state = IDLE
        self.last_run_dir: str | None = None
        self.last_checkpoint: str | None = None
        self.last_result: dict | None = None
        self.tuned: Any = None  # the last finished run's TunedModel (model and tokenizer), for chat
        self.training_started = False  # the current run got past loading: its steps are under way
        self.last_config: Any = None
        self._worker: TrainingWorker | None = None
        self._thread: QThread | None = None

    # -- actions ---------------------------------------------------------------------------------
    def start(self, config: Any) -> None:
        """Start a new run with a copy of `config` (later edits do not touch the running one)."""
        self._launch(copy.deepcopy(config), resume_from=None)

    def resume(self) -> None:
        """Continue the last run from its newest checkpoint (or its folder)."""
        if not self.can_resume():
            raise RuntimeError("There is no stopped run to resume.")
        self._launch(copy.deepcopy(self.last_config), resume_from=self.last_checkpoint or self.last_run_dir)

    def stop(self) -> None:
        """Ask the run to stop after the current step; it saves a checkpoint first."""
        if self._worker is not None and self.state == RUNNING:
            self._set_state(STOPPING)
            self._worker.cancel()

    def can_resume(self) -> bool:
        """True after a stopped (or failed) run that left a checkpoint."""
        if self.state != IDLE or self.last_config is None:
            return False
        result = self.last_result or {}
        stopped = result.get("cancelled") or result.get("message") is not None
        return bool(stopped and (self.last_checkpoint or self.last_run_dir))

    def is_running(self) -> bool:
        return self.state != IDLE

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the worker thread ends (used on quit); True if it ended."""
        return self._thread.wait(timeout_ms) if self._thread is not None else True

    # -- internals -------------------------------------------------------------------------------
    def _launch(self, config: Any, resume_from: Any) -> None:
        if self.state != IDLE:
            raise RuntimeError("A run is already going.")
        self.last_config = config
        self.last_result = None
        self.training_started = False
        self.tuned = None  # the last model goes before the next loads (the worker frees its memory)
        self.sig_releasing.emit()
        worker = TrainingWorker(config, resume_from=resume_from)
        worker.sig_started.connect(self._on_started)
        worker.sig_step.connect(self.sig_step)
        worker.sig_eval.connect(self.sig_eval)
        worker.sig_log.connect(self.sig_log)
        worker.sig_checkpoint.connect(self._on_checkpoint)
        worker.sig_finished.connect(self._on_finished)
        worker.sig_failed.connect(self._on_failed)
        worker.sig_done.connect(self._on_done)
        self._worker = worker
        self._set_state(RUNNING)
        self._thread = start_worker_thread(worker, "tunesmith-training", self._on_thread_finished)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.sig_state.emit(state)

    def _on_started(self, data: dict) -> None:
        self.training_started = True
        self.last_run_dir = data.get("run_dir") or self.last_run_dir
        self.sig_started.emit(data)

    def _on_checkpoint(self, step: int, path: str) -> None:
        self.last_checkpoint = path
        self.sig_checkpoint.emit(step, path)

    def _on_finished(self, data: dict) -> None:
        self.last_result = data
        self.last_run_dir = data.get("run_dir") or self.last_run_dir
        self.last_checkpoint = data.get("last_checkpoint") or self.last_checkpoint
        self.sig_finished.emit(data)

    def _on_failed(self, data: dict) -> None:
        self.last_result = data
        self.last_run_dir = data.get("run_dir") or self.last_run_dir
        self.last_checkpoint = data.get("last_checkpoint") or self.last_checkpoint
        log.error("training failed: %s\n%s", data.get("message"), data.get("details", ""))
        self.sig_failed.emit(data)

    def _on_done(self) -> None:
        if self._worker is not None and (self.last_result or {}).get("adapter_dir"):
            self.tuned = self._worker.tuned

    def _on_thread_finished(self) -> None:
        if self._thread is not None:
            self._thread.wait()
        self._worker = None
        self._thread = None
        self._set_state(IDLE)
        self.sig_run_ended.emit()
