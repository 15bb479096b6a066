"""A ruined run is never reported as a success (issue 21.1), driven through the real widgets.

Out-of-range numbers typed into the form are refused in words at the field instead of being clamped or
reset silently; a value far from the usual is questioned before Start; and a run whose loss diverges
stops early and says, in the status line, that training did not work, why, and what to change.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer

from tunesmith.core.config import RunConfig
from tunesmith.desktop.widgets.settings_form import SettingsForm

TIMEOUT = 240_000  # ms


def type_into(qtbot, editor, text: str) -> None:
    """Select the field's text, type `text` and press Enter, as a user would."""
    line = editor.lineEdit()
    line.selectAll()
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


def test_out_of_range_numbers_are_refused_at_the_field_in_words(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    form.show()
    config = RunConfig()
    form.load(config)
    type_into(qtbot, form.editors["train.batch_size"], "0")
    note = form.notes["train.batch_size"]
    assert form.value("train.batch_size") == 2 and not note.isHidden()
    assert note.text() == (
        "0 is not allowed: Batch size must be between 1 and 512 (usually 1 to 128). It stays 2."
    )
    type_into(qtbot, form.editors["train.learning_rate"], "5")
    assert form.value("train.learning_rate") == pytest.approx(2e-4)  # not clamped to the maximum
    assert (
        "5 is not allowed: Learning rate must be between 1e-07 and 1"
        in form.notes["train.learning_rate"].text()
    )
    type_into(qtbot, form.editors["train.batch_size"], "4")
    assert form.value("train.batch_size") == 4 and note.isHidden()


def answer_unusual_box(qtbot, train, button_text: str) -> None:
    """Click `button_text` in the "Unusual settings" question as soon as it opens."""

    def click():
        box = train.unusual_box
        if box is None:
            QTimer.singleShot(20, click)
            return
        qtbot.mouseClick(next(b for b in box.buttons() if b.text() == button_text), Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, click)


@pytest.mark.slow
def test_a_diverging_run_is_questioned_before_start_and_reported_as_not_working(window, qtbot):
    controller, train = window.controller, window.train_tab
    controller.config.train.max_steps = 10
    controller.config.train.batch_size = 2
    train.load_from_config()
    type_into(qtbot, train.form.editors["train.learning_rate"], "0.5")
    assert "far from the usual 1e-06 to 0.001" in train.form.notes["train.learning_rate"].text()
    assert controller.config.train.learning_rate == 0.5

    answer_unusual_box(qtbot, train, "Change settings")
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert not controller.training.is_running() and train.start_button.isEnabled()
    assert train.status_label.text().startswith("Not started")

    answer_unusual_box(qtbot, train, "Start anyway")
    with qtbot.waitSignal(controller.training.sig_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not controller.training.is_running(), timeout=TIMEOUT)
    event = finished.args[0]
    assert event.problem and "learning rate (0.5) is far above the usual" in event.problem
    status = train.status_label.text()
    assert "training did not work" in status and "Try 2e-4" in status and "Chat tab" not in status
    assert train.status_label.objectName() == "vramWarning"
