"""Chat with a GGUF file through llama.cpp in the Chat tab: the embedded demo GGUF answers, streamed,
and Stop / Clear work; llama.cpp's process killed mid-answer is a message, and the next one answers.
(Exported GGUFs take the same path: the export action hands them to this tab.)"""

from __future__ import annotations

import importlib.util
import signal

import psutil
import pytest
from PySide6.QtCore import Qt

if importlib.util.find_spec("llama_cpp") is None:  # found, never loaded here: it runs in a child
    pytest.skip(
        "llama-cpp-python is an optional extra (pip install tunesmith[chat])", allow_module_level=True
    )

TIMEOUT = 120_000


def test_chat_with_a_gguf_file_streams_and_clears(window, qtbot):
    from tunesmith.core.models.sources import embedded_gguf_path

    chat, session = window.chat_tab, window.controller.chat
    window.tabs.setCurrentWidget(chat)
    chat.use_gguf(str(embedded_gguf_path()))
    assert chat.sides() == ["gguf"] and chat.columns["gguf"].isVisibleTo(chat)
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(24)
    chat.system_edit.setText("Answer in one short sentence.")
    pieces: list[str] = []
    session.sig_token.connect(lambda side, piece: pieces.append(piece))
    chat.input_edit.setPlainText("What is the capital of France?")
    with qtbot.waitSignal(session.sig_end, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["gguf", False]
    assert len(pieces) >= 2 and "Paris" in "".join(pieces)
    assert "Paris" in chat.answer_text("gguf")
    # where it ran, in words: this machine has no GPU, so llama.cpp answered on the CPU
    assert chat.where_label.text() == "Runs on: llama.cpp on the CPU"
    qtbot.waitUntil(chat.send_button.isEnabled, timeout=TIMEOUT)

    qtbot.mouseClick(chat.clear_button, Qt.MouseButton.LeftButton)
    assert chat.answer_text("gguf") == "" and session.histories["gguf"] == []


def test_stop_ends_a_long_answer_early(window, qtbot):
    from tunesmith.core.models.sources import embedded_gguf_path

    chat, session = window.chat_tab, window.controller.chat
    chat.use_gguf(str(embedded_gguf_path()))
    chat.max_tokens.setValue(400)
    chat.input_edit.setPlainText("Write a long story about a lighthouse keeper.")
    pieces: list[str] = []
    session.sig_token.connect(lambda side, piece: pieces.append(piece))
    chat.send()
    qtbot.waitUntil(lambda: len(pieces) >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(session.sig_end, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(chat.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["gguf", True]
    assert len(pieces) < 300 and "[stopped]" in chat.answer_text("gguf")
    qtbot.waitUntil(chat.send_button.isEnabled, timeout=TIMEOUT)
    assert chat.status_label.text() == "Stopped."  # not "Done.": the answer was cut short


def test_llama_cpp_killed_mid_answer_is_a_message_and_the_next_message_answers(
    window, qtbot, tmp_path, monkeypatch
):
    from tunesmith.core.models.sources import embedded_gguf_path

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))  # where the child's log goes
    chat, session = window.chat_tab, window.controller.chat
    window.tabs.setCurrentWidget(chat)
    chat.use_gguf(str(embedded_gguf_path()))
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(300)
    pieces: list[str] = []
    failed: list[dict] = []
    session.sig_token.connect(lambda side, piece: pieces.append(piece))
    session.sig_failed.connect(lambda side, data: failed.append(data))
    chat.input_edit.setPlainText("Write a long story about a lighthouse keeper.")
    chat.send()
    qtbot.waitUntil(lambda: len(pieces) >= 3, timeout=TIMEOUT)
    engine = session.engines["gguf"]
    child = psutil.Process(engine.pid)
    assert "tunesmith.core.native.host" in " ".join(child.cmdline()), "llama.cpp runs in its own process"
    child.send_signal(signal.SIGSEGV)  # what a fault inside llama.cpp delivers
    qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT)
    qtbot.waitUntil(chat.send_button.isEnabled, timeout=TIMEOUT)

    shown = chat.answer_text("gguf")
    assert "llama.cpp stopped unexpectedly while answering with" in shown
    assert "SIGSEGV" in shown and str(engine.log_path) in shown and "send the message again" in shown
    assert "Traceback" not in shown and engine.log_path.is_file()
    assert window.isVisible() and chat.input_edit.isEnabled()

    pieces.clear()
    chat.input_edit.setPlainText("What is the capital of France?")
    with qtbot.waitSignal(session.sig_end, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["gguf", False] and len(failed) == 1
    assert pieces and engine.pid not in (None, child.pid), "a new llama.cpp process answered"
