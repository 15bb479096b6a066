"""A run stopped in one session of the app can be resumed in the next (issue 21.2), through the widgets.

The quit dialog promises "you can resume later": after a restart the stopped run is offered ("was
stopped at step N of 5" with Resume / Discard); Discard stops the offer without deleting anything; and
the same run picked from Run > Past runs (which says how each run ended) can still be resumed, to its
last step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer

from tunesmith.desktop.main_window import MainWindow
from tunesmith.desktop.workers.background import pending_jobs

from .conftest import small_config

pytestmark = pytest.mark.slow
TIMEOUT = 240_000  # ms


def restart(qtbot, settings, runs) -> MainWindow:
    """A new main window on the same settings, as after quitting and launching the app again."""
    window = MainWindow(settings=settings)
    small_config(window.controller.config, runs, max_steps=5)
    window.train_tab.load_from_config()
    qtbot.addWidget(window)
    window.show()
    # The start-up work (hardware, dataset preview, the look for a stopped run) runs in the background.
    qtbot.waitUntil(lambda: window.controller.hardware is not None and pending_jobs() == 0, timeout=TIMEOUT)
    return window


def test_a_stopped_run_is_offered_after_a_restart_and_resumes_to_its_end(window, qtbot, settings, tmp_path):
    runs = tmp_path / "runs"
    controller, train = window.controller, window.train_tab
    controller.set_output_dir(str(runs))
    controller.config.train.max_steps = 5
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: train.plots.loss.points("train") >= 1, timeout=TIMEOUT)
    with qtbot.waitSignal(controller.training.sig_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(train.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not controller.training.is_running(), timeout=TIMEOUT)
    stopped = finished.args[0]
    assert stopped.cancelled and stopped.step < 5

    second = restart(qtbot, settings, runs)
    offer = second.resume_offer
    assert not offer.isHidden() and offer.run is not None
    assert f"was stopped at step {stopped.step} of 5" in offer.label.text()
    assert not second.train_tab.resume_button.isEnabled()  # nothing adopted before the user answers
    qtbot.mouseClick(offer.discard_button, Qt.MouseButton.LeftButton)
    assert offer.isHidden()
    second.close()

    third = restart(qtbot, settings, runs)
    assert third.resume_offer.isHidden(), "a discarded run is not offered again"
    # ...but it can still be resumed from the history: Run > Past runs lists it with how it ended.
    listed: dict[str, str] = {}

    def choose_in_past_runs():
        dialog = third.past_runs_dialog
        if dialog is None:
            QTimer.singleShot(20, choose_in_past_runs)
            return
        listed.update({column: dialog.text_of(0, column) for column in ("Run", "Dataset", "How it ended")})
        qtbot.mouseClick(dialog.show_button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, choose_in_past_runs)
    third.actions["past_run"].trigger()
    assert listed == {
        "Run": Path(stopped.run_dir).name,
        "Dataset": "sample",
        "How it ended": f"stopped at step {stopped.step} of 5",
    }
    train3 = third.train_tab
    assert train3.resume_button.isEnabled() and third.actions["resume"].isEnabled()
    assert f"was stopped at step {stopped.step} of 5" in train3.status_label.text()
    assert train3.plots.loss.points("train") >= 1, "the run's plots are drawn"
    with qtbot.waitSignal(third.controller.training.sig_finished, timeout=TIMEOUT) as ended:
        third.actions["resume"].trigger()
    qtbot.waitUntil(lambda: not third.controller.training.is_running(), timeout=TIMEOUT)
    assert not ended.args[0].cancelled and ended.args[0].step == 5
    assert ended.args[0].run_dir == stopped.run_dir  # the same run went on, in its own folder

    # The finished run can be chatted with from the same list.
    def chat_from_past_runs():
        dialog = third.past_runs_dialog
        if dialog is None:
            QTimer.singleShot(20, chat_from_past_runs)
            return
        qtbot.mouseClick(dialog.chat_button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, chat_from_past_runs)
    third.actions["past_run"].trigger()
    assert third.tabs.currentWidget() is third.chat_tab
    picked = third.chat_tab.model_combo.run()
    assert picked is not None and str(picked.path) == stopped.run_dir
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=TIMEOUT)
    third.close()
