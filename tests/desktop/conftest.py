"""Fixtures for the desktop tests: offscreen Qt, settings in a temporary folder, a small fast config.

The whole suite's conftest already sets the hub offline and the shared model cache; here Qt is made to
render offscreen, and QSettings, QStandardPaths and the user's Tunesmith folder (TUNESMITH_HOME: the
app's runs and logs) are pointed away from the user's real files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


PAST_RUN_QUESTION = "Who are you?"
PAST_RUN_MAX_TOKENS = 8


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """(runs folder, run folder, answer): one finished SFT run of the embedded model, trained through the
    engine as an earlier session would have left it (4 steps of one 128-token row at lr 3e-3, LoRA r 4 /
    alpha 8, named "owl"), and what the trained model answered PAST_RUN_QUESTION greedily right after
    training.  test_chat_past_runs and test_feedback_loop each trained a run of their own before; both only
    need a finished run whose adapter moved away from the base.  Read it only: `copy_of_run` gives a
    module a copy to write into (feedback files, new runs, folders beside it)."""
    from tunesmith.core.chat import ChatSettings
    from tunesmith.core.chat.transformers_chat import TransformersChat
    from tunesmith.core.config import RunConfig
    from tunesmith.core.events import Finished
    from tunesmith.core.training.engine import TrainingRun

    runs = tmp_path_factory.mktemp("trained-runs")
    config = RunConfig()
    config.model.source, config.data.path, config.data.max_length = "demo", "sample", 128
    config.train.max_steps, config.train.batch_size, config.train.grad_accum = 4, 1, 1
    config.train.learning_rate, config.train.save_steps = 3e-3, 0
    config.lora.r, config.lora.alpha, config.output_dir, config.run_name = 4, 8, str(runs), "owl"
    handle = TrainingRun(config)
    finished = handle.run()
    assert isinstance(finished, Finished), finished
    chat = TransformersChat(handle.model, handle.tokenizer)
    settings = ChatSettings(temperature=0.0, max_new_tokens=PAST_RUN_MAX_TOKENS)
    question = [{"role": "user", "content": PAST_RUN_QUESTION}]
    answer = "".join(chat.stream(question, settings, lambda: False))
    assert answer.strip(), "the trained model answered"
    return runs, Path(finished.run_dir), answer


def copy_of_run(trained, folder: Path) -> tuple[Path, Path]:
    """(runs folder, run folder): `trained_run`'s runs folder copied into `folder` (file times kept)."""
    runs, run_dir, _answer = trained
    copied = folder / "runs"
    shutil.copytree(runs, copied)
    return copied, copied / run_dir.name


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
