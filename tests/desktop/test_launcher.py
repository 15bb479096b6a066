"""The `tunesmith` entry point: the window opens without torch, other commands go to the CLI, and the
app opens and closes cleanly through the real launcher (the smoke test)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from tunesmith.desktop import launcher
from tunesmith.desktop.workers.background import pending_jobs

STARTUP_SCRIPT = textwrap.dedent(
    """
    import sys, time
    t0 = time.perf_counter()
    from tunesmith.desktop.app import make_application
    from PySide6.QtCore import QSettings
    app = make_application()
    from tunesmith.desktop.main_window import MainWindow
    window = MainWindow(settings=QSettings(sys.argv[1], QSettings.Format.IniFormat))
    window.show()
    shown = time.perf_counter() - t0
    heavy = sorted(m for m in ("torch", "transformers", "trl", "peft", "datasets") if m in sys.modules)
    print("HEAVY", ",".join(heavy))
    print("SHOWN", f"{shown:.3f}")
    """
)


def test_window_is_built_without_importing_torch(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, "-c", STARTUP_SCRIPT, str(tmp_path / "s.ini")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in out.stdout.splitlines())
    assert lines["HEAVY"] == "", f"imported at start-up: {lines['HEAVY']}"
    assert float(lines["SHOWN"]) < 15, "the window should appear within seconds"


def test_other_commands_go_to_the_cli(monkeypatch):
    import tunesmith.core.cli as cli

    calls: list[list[str]] = []
    monkeypatch.setattr(cli, "main", lambda argv: calls.append(list(argv)) or 3)
    assert launcher.main(["info", "--json"]) == 3
    assert calls == [["info", "--json"]]


def test_smoke_open_and_close_through_the_launcher(qtbot, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # the app installs its own; restore it after

    def close_when_ready() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if w.objectName() == "mainWindow"]
        if windows and windows[0].controller.hardware is not None and pending_jobs() == 0:
            windows[0].close()
        else:
            QTimer.singleShot(100, close_when_ready)

    QTimer.singleShot(100, close_when_ready)
    assert launcher.main(["gui"]) == 0
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=60_000)
