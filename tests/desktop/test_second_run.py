"""A second run in the same app does not keep the first run's model (issue 13.2).

Two trainings and two chats with the tuned model, in one app process, through the real widgets.
Weak references to the first run's model, trainer and optimizer must all be dead by the time the
second run starts loading its model (on a 12 GB card an 8B model does not fit twice); the trainer
and optimizer of a run go as soon as it ends (only the model stays, for the Chat tab).
"""

from __future__ import annotations

import gc
import weakref

import pytest
from PySide6.QtCore import Qt

from tunesmith.core.training.engine import TrainingRun

pytestmark = pytest.mark.slow

TIMEOUT = 240_000


def alive(refs: dict[str, weakref.ref]) -> list[str]:
    return [name for name, ref in refs.items() if ref() is not None]


def test_two_runs_and_two_chats_keep_one_model(window, qtbot, monkeypatch):
    runs: list[dict[str, weakref.ref]] = []
    alive_when_loading: list[list[str]] = []
    real_setup_model, real_train = TrainingRun.setup_model, TrainingRun.train

    def setup_model(self):  # on the worker thread, just before the model loads
        alive_when_loading.append(alive(runs[-1]) if runs else [])
        real_setup_model(self)

    def train(self):
        real_train(self)
        optimizer = self.trainer.optimizer
        runs.append(
            {
                "model": weakref.ref(self.model),
                "trainer": weakref.ref(self.trainer),
                "optimizer": weakref.ref(optimizer),
                "torch optimizer": weakref.ref(getattr(optimizer, "optimizer", optimizer)),
            }
        )

    monkeypatch.setattr(TrainingRun, "setup_model", setup_model)
    monkeypatch.setattr(TrainingRun, "train", train)
    window.controller.config.train.max_steps = 2

    for attempt in (1, 2):
        train_once(window, qtbot)
        run = runs[-1]
        gc.collect()
        assert alive(run) == ["model"], f"run {attempt}: only the model stays for the chat"
        chat_once(window, qtbot, f"Hello number {attempt}")

    assert alive_when_loading == [[], []], "the first run's objects were gone before the second loaded"
    gc.collect()
    assert alive(runs[0]) == []
    assert window.controller.chat.engines["tuned"] is not None


def train_once(window, qtbot) -> None:
    window.tabs.setCurrentWidget(window.train_tab)
    training = window.controller.training
    with qtbot.waitSignal(training.sig_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(window.train_tab.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not training.is_running(), timeout=TIMEOUT)
    assert not finished.args[0].cancelled
    assert training.tuned is not None


def chat_once(window, qtbot, text: str) -> None:
    chat = window.chat_tab
    window.tabs.setCurrentWidget(chat)
    assert chat.model_combo.currentData() == "tuned"
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(4)
    chat.input_edit.setPlainText(text)
    with qtbot.waitSignal(window.controller.chat.sig_end, timeout=TIMEOUT):
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: chat.send_button.isEnabled(), timeout=TIMEOUT)
