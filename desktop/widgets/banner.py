"""A dismissable banner that shows a message in words, the engine's hint, and optional details.

Errors that do not need to interrupt the user (a dataset problem, a failed run) appear here rather than
in a modal dialog; the full details (a traceback) are one click away.  Knows nothing about the engine.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget


class Banner(QFrame):
    """Hidden until `show_message`; level is "error", "warning" or "info"."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.hint_label = QLabel()
        self.hint_label.setWordWrap(True)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self._show_details)
        self.action_button = QPushButton()  # the one thing to do next, when the message offers it
        self.action_button.clicked.connect(self._run_action)
        self._action: Callable[[], None] | None = None
        close = QPushButton("✕")
        close.setFlat(True)
        close.setToolTip("Hide this message")
        close.clicked.connect(self.hide)
        texts = QVBoxLayout()
        texts.addWidget(self.message_label)
        texts.addWidget(self.hint_label)
        layout = QHBoxLayout(self)
        layout.addLayout(texts, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(self.details_button)
        layout.addWidget(close)
        self._details = ""
        self.hide()

    def show_message(
        self,
        message: str,
        hint: str = "",
        details: str = "",
        level: str = "error",
        action: tuple[str, Callable[[], None]] | None = None,
    ) -> None:
        """Show the banner (replacing any earlier message); `action` adds a (label, callback) button."""
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        prefix = {"error": "⚠ ", "warning": "⚠ ", "info": "ℹ "}.get(level, "")
        self.message_label.setText(f"<b>{prefix}{_escape(message)}</b>")
        self.hint_label.setText(_escape(hint))
        self.hint_label.setVisible(bool(hint))
        self._details = details
        self.details_button.setVisible(bool(details))
        self._action = action[1] if action else None
        self.action_button.setText(action[0] if action else "")
        self.action_button.setVisible(action is not None)
        self.show()

    def text(self) -> str:
        """The message and hint as plain text (for tests and logs)."""
        return f"{self.message_label.text()} {self.hint_label.text()}"

    def _run_action(self) -> None:
        action = self._action
        self.hide()
        if action is not None:
            action()

    def _show_details(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("Details")
        box.setText(self.message_label.text())
        box.setDetailedText(self._details)
        box.open()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
