"""The last line of defence: uncaught exceptions become a dialog and a log entry, never a crash.

`install_excepthook` replaces `sys.excepthook` (and `threading.excepthook`) so that an exception that
escapes a slot is logged with its traceback to the app's log file and shown to the user in words.
`setup_logging` sends the `tunesmith` loggers to that file.  Knows nothing about the engine.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

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


def log_dir() -> Path:
    """Where the app writes its own log (the per-user app data folder)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    path = Path(base or Path.home() / ".tunesmith") / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to `log_dir()/tunesmith.log` (and stderr for warnings); returns the log file."""
    path = log_dir() / "tunesmith.log"
    root = logging.getLogger("tunesmith")
    if not any(isinstance(h, logging.FileHandler) for h in root.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)
    return path


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
