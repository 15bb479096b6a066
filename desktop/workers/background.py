"""Short background jobs: `run_in_background(op, on_success, on_failure)`.

A job is a plain callable run on Qt's global thread pool.  Its result (or the exception it raised) is
delivered back on the GUI thread, to `on_success(result)` or `on_failure(error)`.  Use it for jobs of a
few seconds (detect the GPU, read a dataset, load a tokenizer, export); a training run has its own
worker (`workers.training`).  This module knows nothing of what the jobs do.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

# Relays alive until their result is delivered (a QObject without a Python reference would be freed).
_pending: set[_Relay] = set()


class _Relay(QObject):
    """Lives on the GUI thread; a signal emitted from the pool thread is queued to its slots."""

    sig_success = Signal(object)
    sig_failure = Signal(object)

    def __init__(self, on_success: Callable[[Any], None], on_failure: Callable[[BaseException], None]):
        super().__init__()
        self._on_success = on_success
        self._on_failure = on_failure
        self.sig_success.connect(self._deliver_success)
        self.sig_failure.connect(self._deliver_failure)

    @Slot(object)
    def _deliver_success(self, result: Any) -> None:
        _pending.discard(self)
        self._on_success(result)

    @Slot(object)
    def _deliver_failure(self, error: BaseException) -> None:
        _pending.discard(self)
        self._on_failure(error)


class _Job(QRunnable):
    def __init__(self, op: Callable[[], Any], relay: _Relay):
        super().__init__()
        self._op = op
        self._relay = relay

    def run(self) -> None:  # runs on a pool thread
        try:
            result = self._op()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI, never the void
            exc.details = traceback.format_exc()  # type: ignore[attr-defined]
            log.debug("background job failed", exc_info=True)
            _emit(self._relay.sig_failure, exc)
        else:
            _emit(self._relay.sig_success, result)


def _emit(signal, value: Any) -> None:
    try:
        signal.emit(value)
    except RuntimeError:  # the app is shutting down and the relay is gone: nobody is listening
        log.debug("background job finished after shutdown")


def _default_failure(error: BaseException) -> None:
    log.error("background job failed: %s", error)


def run_in_background(
    op: Callable[[], Any],
    on_success: Callable[[Any], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
    pool: QThreadPool | None = None,
) -> None:
    """Run `op()` off the GUI thread; call `on_success(result)` or `on_failure(exc)` on the GUI thread.

    Must be called from the GUI thread.  An exception keeps its traceback text in `exc.details`.
    `pool` (Qt's global pool unless given) lets quick jobs that a person waits for not queue behind
    the long ones (the global pool has one thread per core, and loading a model can hold them all).
    """
    relay = _Relay(on_success or (lambda _result: None), on_failure or _default_failure)
    _pending.add(relay)
    (pool or QThreadPool.globalInstance()).start(_Job(op, relay))


def pending_jobs() -> int:
    """How many jobs have not delivered their result yet (tests wait for 0)."""
    return len(_pending)
