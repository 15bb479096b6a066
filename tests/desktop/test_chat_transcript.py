"""Chat transcripts people can read (issue 21, point 9), through the real widgets and llama.cpp on the
embedded demo GGUF: one block per message (a "You:" never glued to the answer before it), each answer
under the name of the model that wrote it, and a divider with a new conversation when another model
takes over the column, so the old model's answer never reads as the new one's."""

from __future__ import annotations

import importlib.util

import pytest
from PySide6.QtCore import Qt

if importlib.util.find_spec("llama_cpp") is None:  # found, never loaded here: it runs in a child
    pytest.skip(
        "llama-cpp-python is an optional extra (pip install tunesmith[chat])", allow_module_level=True
    )

TIMEOUT = 120_000


def _ask(chat, qtbot, text: str) -> str:
    """Send `text` with the Send button; wait for the answer and the end of the chat thread."""
    session = chat.session
    chat.input_edit.setPlainText(text)
    with qtbot.waitSignal(session.sig_end, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["gguf", False]
    qtbot.waitUntil(chat.send_button.isEnabled, timeout=TIMEOUT)
    return session.histories["gguf"][-1]["content"]


def test_one_block_per_message_and_a_divider_when_the_model_changes(window, qtbot, tmp_path):
    from tunesmith.core.models.sources import embedded_gguf_path

    chat = window.chat_tab
    window.tabs.setCurrentWidget(chat)
    demo = embedded_gguf_path()
    chat.use_gguf(str(demo))
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(8)
    first = _ask(chat, qtbot, "What is the capital of France?")
    second = _ask(chat, qtbot, "And of Italy?")
    old_name = f"GGUF {demo.name}"
    assert first.strip() and second.strip()

    transcript = chat.transcripts["gguf"]
    assert [(m.speaker, m.text) for m in transcript.messages] == [
        ("You", "What is the capital of France?"),
        (old_name, first),
        ("You", "And of Italy?"),
        (old_name, second),
    ]
    lines = chat.answer_text("gguf").splitlines()
    assert "You: And of Italy?" in lines, "the second message starts a line of its own"
    assert [line for line in lines if "You:" in line] == [
        "You: What is the capital of France?",
        "You: And of Italy?",
    ]
    assert transcript.document().blockCount() >= 4

    # Another file in the same column: a divider, a new conversation, answers under the new name.
    other = tmp_path / "another-model.gguf"
    other.symlink_to(demo)
    chat.use_gguf(str(other))
    new_name = "GGUF another-model.gguf"
    assert chat.titles["gguf"].text() == f"<b>{new_name}</b>"
    assert transcript.messages[-1].kind == "divider" and new_name in transcript.messages[-1].text
    assert chat.session.histories["gguf"] == [], "the new model does not see the old one's conversation"
    third = _ask(chat, qtbot, "What is the capital of Spain?")
    assert chat.session.origins["gguf"] == str(other), "the new file was loaded"
    assert chat.session.histories["gguf"] == [
        {"role": "user", "content": "What is the capital of Spain?"},
        {"role": "assistant", "content": third},
    ]
    speakers = [m.speaker for m in transcript.messages if m.kind == "model"]
    assert speakers == [old_name, old_name, new_name], "old answers keep the old model's name"
    assert (
        "──── Now chatting with GGUF another-model.gguf: a new conversation ────"
        in chat.answer_text("gguf").splitlines()
    )


def test_a_model_that_cannot_load_leaves_no_unanswered_message(window, qtbot, tmp_path):
    """A file that is not a GGUF fails to load: nothing was sent, so no "You:" stays without an answer
    and the message goes back into the box to send again with another model."""
    from tunesmith.core.models.sources import embedded_gguf_path

    chat = window.chat_tab
    window.tabs.setCurrentWidget(chat)
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("these are my notes, not a model\n")
    chat.use_gguf(str(not_a_model))
    assert chat.send_button.isEnabled()
    chat.input_edit.setPlainText("Hello?")
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Could not load the model" in chat.status_label.text(), timeout=TIMEOUT)
    assert chat.transcripts["gguf"].messages == [] and chat.session.histories.get("gguf", []) == []
    assert chat.input_edit.toPlainText() == "Hello?" and chat.send_button.isEnabled()

    chat.use_gguf(str(embedded_gguf_path()))
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(4)
    answer = _ask(chat, qtbot, chat.input_edit.toPlainText())
    assert [m.speaker for m in chat.transcripts["gguf"].messages] == [
        "You",
        f"GGUF {embedded_gguf_path().name}",
    ]
    assert chat.transcripts["gguf"].messages[-1].text == answer
