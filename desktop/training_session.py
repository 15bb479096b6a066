"""Start, stop and resume training runs, one at a time, and remember the last one.

`TrainingSession` owns the `TrainingWorker` and its QThread, sorts the engine events the worker passes
on into one signal per kind, each carrying the event itself, so tabs connect once (not per run), and
keeps what later steps need: the last run folder, its newest checkpoint, and the last finished run's
model and tokenizer (`tuned`, which the Chat tab talks to).  A run stopped in an earlier session of the
app (or picked from the history) is taken up with `adopt`, after which Resume continues it.

A new run (or a resume) first lets go of that model and says so (`sig_releasing`), so whoever holds it
(the chat engines) drops it too before the next model loads: one model on the GPU at a time.  It
knows nothing of widgets and does not import torch.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal

from tunesmith.core.events import (
    CheckpointSaved,
    EvalMetrics,
    Event,
    Failed,
    Finished,
    LogLine,
    RunStarted,
    StepMetrics,
)
from tunesmith.desktop.logic.chat_models import TunedModel
from tunesmith.desktop.logic.unfinished_runs import ResumableRun
from tunesmith.desktop.workers.training import TrainingWorker, start_worker_thread

if TYPE_CHECKING:
    from tunesmith.core.config import RunConfig

log = logging.getLogger(__name__)

IDLE, RUNNING, STOPPING = "idle", "running", "stopping"


class TrainingSession(QObject):
    """One run at a time.

    Signals (the engine's frozen events from tunesmith.core.events, as they are):
        sig_started(RunStarted), sig_step(StepMetrics), sig_eval(EvalMetrics)
        sig_log(str, str):     a LogLine's level ("info" | "warning" | "error") and message
        sig_checkpoint(int, str): a CheckpointSaved's step and folder
        sig_finished(Finished), sig_failed(Failed): the run's last event
        sig_state(str):  "idle" | "running" | "stopping"
        sig_run_ended(): the worker thread is finished (after sig_finished or sig_failed)
        sig_releasing(): a new run is about to load: drop every reference to the last run's model now
                         (emitted synchronously on the GUI thread, before the worker starts)
    """

    sig_started = Signal(object)
    sig_step = Signal(object)
    sig_eval = Signal(object)
    sig_log = Signal(str, str)
    sig_checkpoint = Signal(int, str)
    sig_finished = Signal(object)
    sig_failed = Signal(object)
    sig_state = Signal(str)
    sig_run_ended = Signal()
    sig_releasing = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state = IDLE
        self.last_run_dir: str | None = None
        self.last_checkpoint: str | None = None
        self.last_result: Finished | Failed | None = None
        self.tuned: TunedModel | None = None  # the last finished run's model and tokenizer, for chat
        self.training_started = False  # the current run got past loading: its steps are under way
        self.last_config: RunConfig | None = None
        self._resumable = False  # the last run stopped early (or was adopted) and kept a checkpoint
        self._worker: TrainingWorker | None = None
        self._thread: QThread | None = None

    # -- actions ---------------------------------------------------------------------------------
    def start(self, config: RunConfig) -> None:
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

    def adopt(self, run: ResumableRun) -> None:
        """Make a run stopped earlier (another session of the app, a crash, the history) the one
        Resume continues; sig_state tells the buttons."""
        if self.state != IDLE:
            raise RuntimeError("A run is going: it must end before another can be taken up.")
        self.last_config = run.config
        self.last_run_dir = str(run.path)
        self.last_checkpoint = str(run.checkpoint)
        self.last_result = None
        self._resumable = True
        self._set_state(IDLE)

    def can_resume(self) -> bool:
        """True after a stopped (or failed) run that left a checkpoint, or an adopted one."""
        if self.state != IDLE or self.last_config is None:
            return False
        return bool(self._resumable and (self.last_checkpoint or self.last_run_dir))

    def is_running(self) -> bool:
        return self.state != IDLE

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the worker thread ends (used on quit); True if it ended."""
        return self._thread.wait(timeout_ms) if self._thread is not None else True

    # -- internals -------------------------------------------------------------------------------
    def _launch(self, config: RunConfig, resume_from: str | None) -> None:
        if self.state != IDLE:
            raise RuntimeError("A run is already going.")
        self.last_config = config
        self.last_result = None
        self._resumable = False
        self.training_started = False
        self.tuned = None  # the last model goes before the next loads (the worker frees its memory)
        self.sig_releasing.emit()
        worker = TrainingWorker(config, resume_from=resume_from)
        worker.sig_event.connect(self._on_event)
        worker.sig_done.connect(self._on_done)
        self._worker = worker
        self._set_state(RUNNING)
        self._thread = start_worker_thread(worker, "tunesmith-training", self._on_thread_finished)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.sig_state.emit(state)

    def _on_event(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.training_started = True
                self.last_run_dir = event.run_dir or self.last_run_dir
                self.sig_started.emit(event)
            case StepMetrics():
                self.sig_step.emit(event)
            case EvalMetrics():
                self.sig_eval.emit(event)
            case LogLine():
                self.sig_log.emit(event.level, event.message)
            case CheckpointSaved():
                self.last_checkpoint = event.path
                self.sig_checkpoint.emit(event.step, event.path)
            case Finished():
                self._remember_end(event)
                self.sig_finished.emit(event)
            case Failed():
                self._remember_end(event)
                log.error("training failed: %s\n%s", event.message, event.details)
                self.sig_failed.emit(event)
            case _:
                log.debug("unhandled engine event %r", event)

    def _remember_end(self, event: Finished | Failed) -> None:
        self.last_result = event
        self._resumable = isinstance(event, Failed) or event.cancelled
        self.last_run_dir = event.run_dir or self.last_run_dir
        self.last_checkpoint = event.last_checkpoint or self.last_checkpoint

    def _on_done(self) -> None:
        finished = self.last_result if isinstance(self.last_result, Finished) else None
        if self._worker is not None and finished is not None and finished.adapter_dir:
            self.tuned = self._worker.tuned

    def _on_thread_finished(self) -> None:
        if self._thread is not None:
            self._thread.wait()
        self._worker = None
        self._thread = None
        self._set_state(IDLE)
        self.sig_run_ended.emit()
