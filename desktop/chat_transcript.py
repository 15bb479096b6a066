"""One side's chat transcript: a read-only text view with one block per message.

Each message starts a paragraph of its own ("You: …", "<model name>: …"), so a new message is never
glued to the end of the answer before it; an answer's streamed pieces go to the end of its own message.
A divider (a centred grey line) marks where the conversation changed, e.g. another model took over.
The messages are also kept as plain data (`messages`), which is what tests read.  Knows nothing about
engines or sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextBrowser, QWidget

ERROR_COLOR = "#c0392b"
DIVIDER_COLOR = "#7f8c8d"
MESSAGE_GAP = 8  # pixels above each message, so two messages never read as one


@dataclass
class Message:
    """A shown message: who wrote it ("You", a model's name, or "" for a notice) and the text so far."""

    speaker: str
    text: str
    kind: str = "model"  # "user" | "model" | "error" | "divider"


class ChatTranscript(QTextBrowser):
    """The conversation of one side, as the user reads it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.messages: list[Message] = []

    def add_message(self, speaker: str, text: str = "", kind: str = "model") -> None:
        """Start a new message block: the speaker in bold, then `text` (an answer streams in after it)."""
        cursor = self._new_block(Qt.AlignmentFlag.AlignLeft)
        if speaker:
            bold = QTextCharFormat()
            bold.setFontWeight(QFont.Weight.Bold)
            cursor.insertText(f"{speaker}: ", bold)
        cursor.insertText(text, self._text_format(kind))
        self.messages.append(Message(speaker, text, kind))
        self._scroll_to_end(cursor)

    def append_text(self, piece: str) -> None:
        """Add a streamed piece to the end of the last message."""
        if not self.messages:
            self.add_message("", "")
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece, self._text_format(self.messages[-1].kind))
        self.messages[-1].text += piece
        self._scroll_to_end(cursor)

    def add_divider(self, text: str) -> None:
        """A centred grey line between conversations (e.g. "Now chatting with …")."""
        cursor = self._new_block(Qt.AlignmentFlag.AlignHCenter)
        grey = QTextCharFormat()
        grey.setForeground(QColor(DIVIDER_COLOR))
        grey.setFontItalic(True)
        cursor.insertText(f"──── {text} ────", grey)
        self.messages.append(Message("", text, "divider"))
        self._scroll_to_end(cursor)

    def clear(self) -> None:
        super().clear()
        self.messages = []

    def _new_block(self, alignment: Qt.AlignmentFlag) -> QTextCursor:
        """A cursor in a fresh paragraph at the end (the document's first, empty one when it is empty)."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        block = QTextBlockFormat()
        block.setAlignment(alignment)
        block.setTopMargin(MESSAGE_GAP)
        if self.document().isEmpty():
            cursor.setBlockFormat(block)
        else:
            cursor.insertBlock(block, QTextCharFormat())
        return cursor

    def _text_format(self, kind: str) -> QTextCharFormat:
        plain = QTextCharFormat()
        if kind == "error":
            plain.setForeground(QColor(ERROR_COLOR))
        return plain

    def _scroll_to_end(self, cursor: QTextCursor) -> None:
        self.setTextCursor(cursor)
        self.ensureCursorVisible()
