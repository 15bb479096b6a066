"""Run the real app (`run_app`: event loop, then the bounded wait of desktop.shutdown) and close its
window while the engine's model load is held back; print when the window closed (JSON on stdout).

Run by test_closing.py as a child process, so that the process's own end is what is measured: after
the window, a load that cannot be interrupted must not keep the process (nor make Qt abort on a
running QThread).  argv[1] is the folder for QSettings.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from PySide6.QtCore import QSettings, QTimer

from tunesmith.core.models import loading
from tunesmith.desktop import app as app_module
from tunesmith.desktop.main_window import MainWindow

LOAD_S = 600  # far longer than any test waits: only the process's end can stop it


def main(settings_dir: str) -> int:
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)
    load_began = threading.Event()
    real_load = loading.load_for_training

    def held_load(*args, **kwargs):
        load_began.set()
        time.sleep(LOAD_S)
        return real_load(*args, **kwargs)

    loading.load_for_training = held_load
    MainWindow.confirm_stop_on_close = lambda self: True
    shown = MainWindow.showEvent

    def show_event(window, event):
        shown(window, event)
        if not getattr(window, "_probe_started", False):
            window._probe_started = True
            QTimer.singleShot(0, lambda: start_then_close(window, load_began))

    MainWindow.showEvent = show_event
    return app_module.run_app()


def start_then_close(window, load_began: threading.Event) -> None:
    window.train_tab.start()

    def poll() -> None:
        if load_began.is_set():
            print(json.dumps({"closing_at": time.time()}), flush=True)
            window.close()
        else:
            QTimer.singleShot(100, poll)

    poll()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
