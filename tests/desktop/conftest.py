"""Fixtures for the desktop tests: offscreen Qt, settings in a temporary folder, a small fast config.

The whole suite's conftest already sets the hub offline and the shared model cache; here Qt is made to
render offscreen, and QSettings, QStandardPaths and the user's Tunesmith folder (TUNESMITH_HOME: the
app's runs and logs) are pointed away from the user's real files.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QStandardPaths  # noqa: E402

from tunesmith.desktop.workers.background import pending_jobs  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, qapp, monkeypatch):
    """QSettings, app data and the user folder live in a per-test folder; the real ones are never touched."""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    QStandardPaths.setTestModeEnabled(True)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield tmp_path / "settings"


@pytest.fixture
def settings(isolated_settings):
    from tunesmith.desktop.persistence import make_settings

    return make_settings()


def small_config(config, output_dir, max_steps: int = 4):
    """Make `config` a seconds-long run on the embedded model (CPU, 128 tokens, batch 1)."""
    config.model.source = "demo"
    config.data.path = "sample"
    config.data.max_length = 128
    config.train.max_steps = max_steps
    config.train.batch_size = 1
    config.train.grad_accum = 1
    config.train.logging_steps = 1
    config.train.save_steps = 0
    config.lora.r = 8
    config.output_dir = str(output_dir)
    return config


@pytest.fixture
def window(qtbot, settings, tmp_path):
    """The real main window, shown offscreen, with a small config; background jobs drained at the end."""
    from tunesmith.desktop.main_window import MainWindow

    win = MainWindow(settings=settings)
    small_config(win.controller.config, tmp_path / "runs")
    win.train_tab.load_from_config()
    win.show()
    yield win
    # Not qtbot.addWidget: its teardown would close the window while a run may still go (a modal ask).
    if win.controller.training.is_running():
        win.controller.training.stop()
        qtbot.waitUntil(lambda: not win.controller.training.is_running(), timeout=240_000)
    win.controller.chat.stop()
    qtbot.waitUntil(lambda: pending_jobs() == 0 and not win.controller.chat.is_busy(), timeout=240_000)
    win.close()
    win.deleteLater()
