"""The QThread bridge for a training run: engine events in, Qt signals out.

`TrainingWorker` is a QObject moved to its own QThread.  Its `run` slot builds the engine's
`TrainingRun` and blocks in it; every event the engine reports (on this worker thread) travels to the
GUI thread as itself, one frozen `tunesmith.core.events.Event`, through the one signal `sig_event`
(Qt queues it).  An error the engine could not report becomes a `Failed` event the same way.
`cancel()` may be called from any thread.

Memory: before loading, the worker frees what earlier runs left (the session has let go of them); when
the run ends it keeps only the trained model and tokenizer (`tuned`, for chatting) and drops the run
handle, so the trainer, its optimizer and the data are freed at once rather than at the next run.  The
worker knows nothing of widgets; it does not import torch itself (the engine does, on the worker thread).
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from tunesmith.core.events import Event, Failed, Finished
from tunesmith.desktop.logic.chat_models import TunedModel

if TYPE_CHECKING:
    from tunesmith.core.config import RunConfig
    from tunesmith.core.training.engine import TrainingRun

log = logging.getLogger(__name__)


def form_name(setting: str) -> str:
    """A setting as the app labels it ("the 'Learning rate' setting"), for the engine's messages; a
    name that is no setting stays as it is."""
    from tunesmith.desktop.logic.settings_spec import LABELS

    label = LABELS.get(setting)
    return f"the '{label}' setting" if label else setting


class TrainingWorker(QObject):
    """Runs one training run (or a resume) on a QThread.

    Signals:
        sig_event(Event):  each engine event as it is (RunStarted, StepMetrics, EvalMetrics, LogLine,
                           CheckpointSaved, Finished, Failed); the run's last one is Finished or Failed
        sig_done():        always last, once the engine returned (the thread may then quit)
    """

    sig_event = Signal(object)
    sig_done = Signal()

    def __init__(self, config: RunConfig, resume_from: str | Path | None = None):
        super().__init__()
        self._config = config
        self._resume_from = resume_from
        self._lock = threading.Lock()
        self._cancel_requested = False
        self.run_handle: TrainingRun | None = (
            None  # the engine's TrainingRun while it runs (cancel() reaches it)
        )
        self.tuned: TunedModel | None = None  # after a finished run: its model, to chat with

    @Slot()
    def run(self) -> None:
        """Build and run the engine's TrainingRun; emits signals until sig_done."""
        handle = None
        try:
            from tunesmith.core.heavy_imports import import_heavy
            from tunesmith.core.training.engine import TrainingRun

            import_heavy()  # a background probe may be importing them right now: wait for it, never race it
            _free_memory_quietly()  # the last run's model, let go of by the session, leaves before this loads
            handle = TrainingRun(
                self._config, self._on_event, resume_from=self._resume_from, name_setting=form_name
            )
            with self._lock:
                self.run_handle = handle
                cancel_now = self._cancel_requested
            if cancel_now:
                handle.cancel()
            result = handle.run()
            if not isinstance(result, (Finished, Failed)):
                log.warning("engine returned %r instead of a Finished/Failed event", result)
            if isinstance(result, Finished) and handle.model is not None:
                self.tuned = TunedModel(handle.model, handle.tokenizer)
        except ImportError as exc:
            self.sig_event.emit(
                Failed(
                    message=f"Training could not start: a library it needs is missing ({exc.name or exc}).",
                    hint="Reinstall Tunesmith (the README's first command) to put it back.",
                    details=traceback.format_exc(),
                )
            )
        except Exception as exc:  # noqa: BLE001 - the engine should not raise, but the app must not die
            run_dir = getattr(handle, "run_dir", None)
            self.sig_event.emit(
                Failed(
                    message=f"The training run stopped with an unexpected error: {exc}",
                    hint="See the log for details.",
                    details=traceback.format_exc(),
                    run_dir=str(run_dir) if run_dir else None,
                )
            )
        finally:
            with self._lock:
                self.run_handle = None
            handle = None  # the trainer, its optimizer and the data go now; the model stays in `tuned`
            _free_memory_quietly()
            self.sig_done.emit()

    def cancel(self) -> None:
        """Ask the run to stop after the current step (a checkpoint is saved).  Thread-safe."""
        with self._lock:
            self._cancel_requested = True
            handle = self.run_handle
        if handle is not None:
            handle.cancel()

    def _on_event(self, event: Event) -> None:
        """Called by the engine on the worker thread; the event crosses to the GUI thread as it is."""
        self.sig_event.emit(event)


def _free_memory_quietly() -> None:
    try:
        from tunesmith.core.free_memory import free_memory

        free_memory()
    except Exception:  # noqa: BLE001 - freeing memory early is a courtesy; the run's outcome is reported
        log.debug("could not free memory after the run", exc_info=True)


def start_worker_thread(worker: QObject, name: str, on_finished=None) -> QThread:
    """Move `worker` to a new QThread, run `worker.run` there, quit the thread on `worker.sig_done`.

    `on_finished` (a slot of a GUI-thread QObject) is connected to the thread's `finished` before start.
    """
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: QThread.quit is thread-safe, and the loop must end even if the GUI thread is busy waiting.
    worker.sig_done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    if on_finished is not None:
        thread.finished.connect(on_finished)
    thread.start()
    return thread
