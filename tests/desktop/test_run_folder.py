"""Runs live in the user's own folder (issue 12.5): started from a folder nobody can write in (a desktop
menu starts apps in `/`, Windows shortcuts in Program Files), the app still trains, into
TUNESMITH_HOME/runs (`~/Tunesmith/runs`); the Train tab says where, the folder can be changed, and the
choice is remembered.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tunesmith.desktop import persistence
from tunesmith.desktop.logic.formatting import friendly_path
from tunesmith.desktop.main_window import MainWindow
from tunesmith.desktop.widgets.run_folder import RunFolderRow
from tunesmith.desktop.workers.background import pending_jobs

TIMEOUT = 240_000


def test_paths_read_as_a_person_reads_them():
    if os.name == "nt":
        pytest.skip("Windows shows whole paths")
    assert friendly_path("/home/ann/Tunesmith/runs", home="/home/ann") == "~/Tunesmith/runs"
    assert friendly_path("/home/annabel/runs", home="/home/ann") == "/home/annabel/runs"
    assert friendly_path("/srv/runs", home="/home/ann") == "/srv/runs"


def test_a_folder_that_cannot_be_written_is_refused_in_words(qtbot, tmp_path):
    row = RunFolderRow()
    qtbot.addWidget(row)
    row.show_folder(str(tmp_path / "runs"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    chosen: list[str] = []
    row.sig_chosen.connect(chosen.append)
    assert not row.choose_path(str(blocker / "runs"))
    assert "cannot write" in row.label.text() and not chosen
    assert row.choose_path(str(tmp_path / "elsewhere" / "runs"))  # created when the first run starts
    assert chosen == [str(tmp_path / "elsewhere" / "runs")]


def test_the_run_folder_is_shown_changed_and_remembered(qtbot, settings, tmp_path):
    home = Path(os.environ["TUNESMITH_HOME"])
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    assert Path(window.controller.config.output_dir) == home / "runs"
    assert friendly_path(home / "runs") in window.train_tab.run_folder.label.text()

    other = tmp_path / "my runs"
    window.train_tab.run_folder.choose_path(str(other))
    assert window.controller.config.output_dir == str(other)
    again = MainWindow(settings=persistence.make_settings())  # the next start
    qtbot.addWidget(again)
    assert again.controller.config.output_dir == str(other)
    assert friendly_path(other) in again.train_tab.run_folder.label.text()


@pytest.mark.slow
def test_started_from_an_unwritable_folder_the_app_trains_into_the_user_folder(
    qtbot, settings, tmp_path, monkeypatch
):
    cwd = tmp_path / "Program Files"
    cwd.mkdir()
    cwd.chmod(0o555)
    monkeypatch.chdir(cwd)
    home = Path(os.environ["TUNESMITH_HOME"])
    window = MainWindow(settings=settings)
    config = window.controller.config  # the app's own output folder; a seconds-long run on the demo model
    config.data.max_length, config.train.max_steps, config.train.batch_size = 128, 2, 1
    config.train.grad_accum, config.lora.r = 1, 8
    window.train_tab.load_from_config()
    window.show()
    try:
        window.tabs.setCurrentWidget(window.train_tab)
        with qtbot.waitSignal(window.controller.training.sig_finished, timeout=TIMEOUT) as finished:
            qtbot.mouseClick(window.train_tab.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not window.controller.training.is_running(), timeout=TIMEOUT)
        assert not finished.args[0].cancelled, finished.args
        run_dir = Path(finished.args[0].run_dir).resolve()
        assert run_dir.parent == (home / "runs").resolve()
        assert (run_dir / "adapter").is_dir()
        assert not any(cwd.iterdir()), "nothing was written where the app was started from"
        assert friendly_path(home / "runs") in window.train_tab.run_folder.label.text()
    finally:
        qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=TIMEOUT)
        window.close()
        window.deleteLater()
        cwd.chmod(0o755)
