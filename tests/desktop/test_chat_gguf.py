"""Chat with a GGUF file through llama.cpp in the Chat tab: the embedded demo GGUF answers, streamed,
and Stop / Clear work.  (Exported GGUFs take the same path: the export action hands them to this tab.)"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("llama_cpp", reason="llama-cpp-python is an optional extra (pip install tunesmith[chat])")

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
