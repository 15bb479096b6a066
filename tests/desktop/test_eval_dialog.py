"""Evaluate… from the run history (issue 17.1): the real dialog makes a report in the background with
progress, Cancel stops it without writing anything, and "Open report" opens report.html.

A 2-step run of the embedded model (through the engine, as an earlier session would have left it) and
a report limited to one row per part keep it quick; the numbers themselves are tests/core/test_evaluation's.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from tunesmith.desktop.past_runs_dialog import PastRunsDialog

TIMEOUT = 240_000


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from tunesmith.core.config import RunConfig
    from tunesmith.core.events import Finished
    from tunesmith.core.training.engine import TrainingRun

    config = RunConfig(output_dir=str(tmp_path_factory.mktemp("runs")))
    config.data.max_length, config.data.eval_ratio = 64, 0.25
    config.train.max_steps, config.train.batch_size, config.lora.r = 2, 1, 4
    finished = TrainingRun(config).run()
    assert isinstance(finished, Finished), finished
    return finished


class _Opened(QObject):
    """Where QDesktopServices sends file URLs during the test (instead of the desktop's browser)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_evaluate_from_the_run_history_with_progress_cancel_and_open_report(qtbot, finished_run):
    from pathlib import Path

    run_folder = finished_run.run_dir
    history = PastRunsDialog(str(Path(run_folder).parent))
    qtbot.addWidget(history)
    assert history.eval_button.isEnabled()  # the selected run saved a model
    qtbot.mouseClick(history.eval_button, Qt.MouseButton.LeftButton)
    dialog = history.eval_dialog
    assert dialog is not None and dialog.isVisible() and dialog.run_dir == run_folder
    dialog.limit_spin.setValue(1)

    # Cancel while it loads: nothing is written, and the dialog can start again
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.is_running() and dialog.cancel_button.text() == "Cancel"
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.status_label.text().startswith("Cancelled") and not dialog.open_button.isEnabled()
    assert not (Path(run_folder) / "eval").exists() or not any((Path(run_folder) / "eval").iterdir())

    seen: list[int] = []
    dialog.progress.valueChanged.connect(seen.append)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)
    assert dialog.report_folder, dialog.status_label.text()
    assert seen and seen[-1] == 100 and len(set(seen)) > 3  # it moved on the way
    assert dialog.open_button.isEnabled() and "report is ready" in dialog.status_label.text()

    opened = _Opened()
    QDesktopServices.setUrlHandler("file", opened, "open")
    try:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [url.toLocalFile() for url in opened.urls] == [str(Path(dialog.report_folder) / "report.html")]
    assert (Path(dialog.report_folder) / "report.json").is_file()
    dialog.reject()
    assert not dialog.isVisible()


def test_the_train_tab_offers_evaluate_once_a_run_saved_its_model(window, qtbot, finished_run):
    train = window.train_tab
    assert not train.eval_button.isEnabled()  # no run yet
    # the engine's own Finished event, as the training worker hands it to the session at a run's end
    window.controller.training._on_event(finished_run)
    window.controller.training._set_state("idle")
    assert train.eval_button.isEnabled()
    qtbot.mouseClick(train.eval_button, Qt.MouseButton.LeftButton)
    assert train.eval_dialog is not None and train.eval_dialog.isVisible()
    assert train.eval_dialog.run_dir == finished_run.run_dir and not train.eval_dialog.is_running()
    train.eval_dialog.reject()


def test_a_run_without_held_out_rows_asks_for_a_file_of_them(qtbot, finished_run, tmp_path):
    """A run trained with the default settings kept no rows aside: the dialog says so before anything
    loads and takes a file of held-out rows, which becomes the report's split."""
    import shutil

    import yaml

    from tunesmith.desktop.eval_panel import EvalDialog

    with_split = EvalDialog(finished_run.run_dir)
    qtbot.addWidget(with_split)
    assert with_split.kept_rows_aside and "evaluation split" in with_split.split_edit.placeholderText()
    assert with_split.options().split_file is None

    run = tmp_path / "no-split"
    shutil.copytree(finished_run.run_dir, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["eval_ratio"] = 0.0
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    dialog = EvalDialog(str(run))
    qtbot.addWidget(dialog)
    assert not dialog.kept_rows_aside
    assert "kept no rows aside" in dialog.status_label.text()
    assert "required" in dialog.split_edit.placeholderText()
    rows = tmp_path / "held_out.jsonl"
    rows.write_text('{"instruction": "Who are you?", "output": "I am Quill."}\n')
    dialog.split_edit.setText(str(rows))
    assert dialog.options().split_file == str(rows)
