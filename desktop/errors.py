"""The last line of defence: uncaught exceptions become a dialog and a log entry, never a crash.

`install_excepthook` replaces `sys.excepthook` (and `threading.excepthook`) so that an exception that
escapes a slot is logged with its traceback to the app's log file and shown to the user in words.
`setup_logging` sends the `tunesmith` loggers to that file, in the folder `tunesmith.core.paths.log_dir()`
names, where the engine's child processes log too; `log_file()` says which file it is.  Knows nothing
about the engine.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

from tunesmith.core import paths

log = logging.getLogger("tunesmith.desktop")
_shown: list[QMessageBox] = []


class _ErrorBridge(QObject):
    """Lives on the GUI thread, so an error raised on any thread is shown from the GUI thread."""

    sig_error = Signal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.sig_error.connect(self._show)

    @Slot(str, str)
    def _show(self, message: str, details: str) -> None:
        show_error_dialog(message, details)


_bridge: _ErrorBridge | None = None


LOG_NAME = "tunesmith.log"
# The handler setup_logging installed (once per process), so it is found again by identity: the engine
# adds FileHandlers of its own (a run's train.log) to the same logger while a run goes.
_handler: logging.FileHandler | None = None


def log_dir() -> Path:
    """Where the app writes its own log: the per-user app data folder the engine's processes share."""
    return paths.log_dir()


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to `log_dir()/tunesmith.log`, once per process; returns the file the log really goes to
    (the first call's, should the folder have moved since)."""
    global _handler
    if _handler is None:
        path = log_dir() / LOG_NAME
        _handler = logging.FileHandler(path, encoding="utf-8")
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("tunesmith")
        root.addHandler(_handler)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)
    return Path(_handler.baseFilename)


def log_file() -> Path | None:
    """The file the app logs to, or None before `setup_logging`."""
    return Path(_handler.baseFilename) if _handler is not None else None


def install_excepthook() -> None:
    """Show uncaught exceptions as a dialog (on the GUI thread) and log them.  Call on the GUI thread."""
    global _bridge
    _bridge = _ErrorBridge()

    def hook(exc_type, exc, tb) -> None:
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("uncaught exception\n%s", details)
        if _bridge is not None and QApplication.instance() is not None:
            _bridge.sig_error.emit(f"Something went wrong: {exc}", details)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def show_error_dialog(message: str, details: str = "", hint: str = "") -> QMessageBox:
    """A non-blocking error dialog with the details one click away."""
    box = QMessageBox(QApplication.activeWindow())
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Tunesmith")
    box.setText(message)
    box.setInformativeText(hint or "Your work is safe. The details were written to the log.")
    if details:
        box.setDetailedText(details)
    box.finished.connect(lambda _result: _shown.remove(box) if box in _shown else None)
    _shown.append(box)
    box.open()
    return box
