"""The Chat tab after a restart (issue 21, points 3 and 9), through the real widgets and the real demo model.

- Send is disabled until the chosen model exists, and says why (tooltip and a visible line); the menu's
  Send then sends nothing: no message is left unanswered, no red banner;
- a run trained before the app started is listed in the model picker (folder, method, steps, date),
  chosen, and answers exactly as its model did right after training; a run that saved no model is not
  listed;
- comparing with the base model midway gives the base the conversation so far, so both sides answer the
  same history.

One short run of the embedded model (4 steps, trained through the engine as a past session would have:
the session's `trained_run` from conftest.py, shared with test_feedback_loop) serves the module; greedy
decoding and a few tokens keep the answers exact and quick on the CPU.
"""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from tunesmith.desktop.workers.background import pending_jobs

from .conftest import PAST_RUN_MAX_TOKENS as MAX_TOKENS
from .conftest import PAST_RUN_QUESTION as QUESTION
from .conftest import copy_of_run

TIMEOUT = 240_000


@pytest.fixture(scope="module")
def past_run(tmp_path_factory, trained_run):
    """(runs folder, run folder, what the trained model answered QUESTION greedily right after training)."""
    runs, run_dir = copy_of_run(trained_run, tmp_path_factory.mktemp("past"))
    return runs, run_dir, trained_run[2]


@pytest.fixture
def restarted(qtbot, settings, past_run):
    """The app started afresh on a profile whose runs folder holds the past run."""
    from tunesmith.desktop import persistence
    from tunesmith.desktop.main_window import MainWindow

    persistence.set_runs_dir(settings, past_run[0])
    window = MainWindow(settings=settings)
    window.show()
    yield window
    window.controller.chat.stop()
    qtbot.waitUntil(lambda: pending_jobs() == 0 and not window.controller.chat.is_busy(), timeout=TIMEOUT)
    window.close()
    window.deleteLater()


def _ask(chat, qtbot, text: str, sides: list[str]) -> None:
    """Type `text`, click Send, wait until every side has answered and the chat thread has ended."""
    ended: list[str] = []
    failed: list[dict] = []
    session = chat.session
    on_end = lambda side, _stopped: ended.append(side)  # noqa: E731
    on_failed = lambda _side, data: failed.append(data)  # noqa: E731
    session.sig_end.connect(on_end)
    session.sig_failed.connect(on_failed)
    try:
        chat.input_edit.setPlainText(text)
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: ended == sides or bool(failed), timeout=TIMEOUT)
        qtbot.waitUntil(chat.send_button.isEnabled, timeout=TIMEOUT)
    finally:
        session.sig_end.disconnect(on_end)
        session.sig_failed.disconnect(on_failed)
    assert not failed, failed


def test_send_waits_for_a_model_and_says_why(window, qtbot):
    from tunesmith.core.models.sources import embedded_gguf_path

    chat = window.chat_tab
    window.tabs.setCurrentWidget(chat)
    assert chat.model_combo.currentData() == "tuned", "nothing trained, no past run: the first choice"
    assert any("none yet in" in chat.model_combo.itemText(i) for i in range(chat.model_combo.count()))
    assert not chat.send_button.isEnabled()
    reason = chat.send_button.toolTip()
    assert "train one in the Train tab" in reason and "past run" in reason
    assert chat.reason_label.isVisible() and reason in chat.reason_label.text()

    # The Chat menu's Send (what Ctrl+Enter does) sends nothing: the message stays, nothing loads.
    jobs: list[str] = []
    window.controller.sig_busy.connect(jobs.append)
    chat.input_edit.setPlainText("Hello?")
    window.actions["send"].trigger()
    assert chat.input_edit.toPlainText() == "Hello?"
    assert chat.answer_text("tuned") == "" and chat.session.histories.get("tuned", []) == []
    assert "Loading the model for chat…" not in jobs and not chat.stop_button.isEnabled()
    assert not window.banner.isVisible()

    chat.model_combo.select_side("gguf")
    assert not chat.send_button.isEnabled() and "Open a GGUF file first" in chat.reason_label.text()
    chat.use_gguf(str(embedded_gguf_path()))
    assert chat.send_button.isEnabled() and chat.reason_label.isHidden()
    assert chat.send_button.toolTip() == "Send the message (Ctrl+Enter)"


def test_a_run_trained_before_a_restart_is_offered_and_answers_as_trained(restarted, qtbot, past_run):
    runs, run_dir, trained_answer = past_run
    unfinished = runs / "failed-before-saving"  # a run that stopped before its model was saved
    unfinished.mkdir(exist_ok=True)
    (unfinished / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    chat = restarted.chat_tab
    restarted.tabs.setCurrentWidget(chat)

    combo = chat.model_combo
    listed = [combo.itemText(i) for i in range(combo.count()) if combo.itemData(i) == "run"]
    saved = time.localtime((run_dir / "adapter" / "adapter_config.json").stat().st_mtime)
    date = f"{saved.tm_mday} {time.strftime('%b %Y %H:%M', saved)}"
    assert run_dir.name.startswith("owl-")
    assert listed == [f"Past run: {run_dir.name} · SFT · 4 steps · {date}"]
    assert combo.currentData() == "run", "nothing trained in this session: the newest past run is chosen"
    assert chat.send_button.isEnabled() and chat.reason_label.isHidden()
    assert chat.titles["run"].text() == f"<b>Run {run_dir.name}</b>"

    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(MAX_TOKENS)
    _ask(chat, qtbot, QUESTION, ["run"])
    answer = chat.session.histories["run"][-1]["content"]
    assert answer == trained_answer, "the past run answers as its model did right after training"
    assert chat.answer_text("run").splitlines() == [f"You: {QUESTION}", f"Run {run_dir.name}: {answer}"]
    assert not restarted.banner.isVisible()


def test_comparing_midway_gives_the_base_the_same_conversation(restarted, qtbot, past_run):
    chat = restarted.chat_tab
    restarted.tabs.setCurrentWidget(chat)
    assert chat.model_combo.currentData() == "run"
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(MAX_TOKENS)
    session = chat.session
    _ask(chat, qtbot, QUESTION, ["run"])
    first_answer = session.histories["run"][-1]["content"]

    chat.compare_check.setChecked(True)
    assert chat.sides() == ["base", "run"]
    assert session.histories["base"] == session.histories["run"], "the base joins the conversation so far"
    joined = chat.transcripts["base"].messages
    assert joined[0].kind == "divider" and f"Run {past_run[1].name}" in joined[0].text
    assert [(m.speaker, m.text) for m in joined[1:]] == [
        ("You", QUESTION),
        (f"Run {past_run[1].name}", first_answer),
    ]

    _ask(chat, qtbot, "What is your name?", ["base", "run"])
    base, run = session.histories["base"], session.histories["run"]
    assert len(base) == len(run) == 4 and base[:3] == run[:3], "both answered the same history"
    assert chat.transcripts["base"].messages[-1].speaker == "Base model (demo)"
    assert chat.transcripts["run"].messages[-2:][0].text == "What is your name?"
