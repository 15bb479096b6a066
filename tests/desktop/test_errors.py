"""Errors reach the user in words, with the engine's hint, and never as a crash: a bad dataset, a missing
model, an uncaught exception.  Also: plots follow a dark palette."""

from __future__ import annotations

import sys

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

from tunesmith.desktop import errors
from tunesmith.desktop.widgets.live_plot import LivePlot

TIMEOUT = 120_000


def test_a_missing_dataset_file_shows_a_banner(window, qtbot, tmp_path):
    window.dataset_tab.open_path(str(tmp_path / "nowhere.jsonl"))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    assert "nowhere.jsonl" in window.banner.text()


def drop_file(widget, path) -> None:
    """Simulate dropping a file from a file manager onto `widget`."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    position = QPointF(widget.rect().center())
    enter = QDragEnterEvent(
        position.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    widget.dropEvent(
        QDropEvent(
            position,
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )


def test_a_broken_row_is_listed_with_its_line_number(window, qtbot, tmp_path):
    path = tmp_path / "data.jsonl"
    good = '{"instruction": "Say hi", "output": "Hi!"}'
    path.write_text(f"{good}\n{{not json\n{good}\n", encoding="utf-8")
    drop_file(window.dataset_tab, path)  # drag-and-drop, as from a file manager
    qtbot.waitUntil(
        lambda: window.controller.dataset is not None and window.controller.dataset.path == str(path),
        timeout=TIMEOUT,
    )
    table = window.dataset_tab.problems_table
    assert table.rowCount() == 1 and table.item(0, 0).text() == "2"
    assert "Problems (1)" in window.dataset_tab.side_tabs.tabText(1)
    assert window.controller.dataset.usable_rows == 2


def test_a_missing_model_fails_the_run_with_a_hint(window, qtbot, tmp_path):
    window.controller.config.model.source = str(tmp_path / "no-such-model")
    with qtbot.waitSignal(window.controller.training.sig_failed, timeout=TIMEOUT) as failed:
        window.train_tab.start()
    qtbot.waitUntil(lambda: not window.controller.training.is_running(), timeout=TIMEOUT)
    assert failed.args[0].message
    assert window.banner.isVisible() and "no-such-model" in window.banner.text()
    assert window.train_tab.start_button.isEnabled() and "Failed" in window.train_tab.status_label.text()


def test_uncaught_exceptions_become_a_dialog_and_a_log_line(qtbot, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    errors.setup_logging()
    errors.install_excepthook()
    # Where the app logs, asked rather than guessed: an earlier test may have set logging up elsewhere.
    log_file = errors.log_file()
    assert log_file is not None
    try:
        raise ValueError("something odd")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    qtbot.waitUntil(
        lambda: any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets()),
        timeout=5000,
    )
    box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
    assert "something odd" in box.text() and "Traceback" in box.detailedText()
    box.close()
    assert "something odd" in log_file.read_text(encoding="utf-8")


def test_plots_follow_a_dark_palette(qtbot):
    plot = LivePlot("Loss", "loss")
    qtbot.addWidget(plot)
    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Base, QColor("#202020"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#eeeeee"))
    plot.setPalette(dark)
    assert plot.plot_widget.backgroundBrush().color().name() == "#202020"
