"""A dismissable banner that shows a message in words, the engine's hint, and optional details.

Errors that do not need to interrupt the user (a dataset problem, a failed run) appear here rather than
in a modal dialog; the full details (a traceback) are one click away.  Long jobs that the user waits
for (an export) show their progress here too, so a message left from before never stands in for it.
Besides the one action that moves on (and hides the banner), a message may carry buttons that keep it
open (Open folder, Copy path).  Knows nothing about the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

Button = tuple[str, Callable[[], None]]  # (label, what a click does)


class Banner(QFrame):
    """Hidden until `show_message`; level is "error", "warning" or "info"."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.hint_label = QLabel()
        self.hint_label.setWordWrap(True)
        self.progress = QProgressBar()  # shown only while a job reports progress
        self.progress.setRange(0, 100)
        self.progress.setMaximumHeight(14)
        self.progress.hide()
        self.buttons: list[QPushButton] = []  # the current message's buttons that keep the banner open
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
        texts.addWidget(self.progress)
        layout = QHBoxLayout(self)
        layout.addLayout(texts, 1)
        self._buttons_row = QHBoxLayout()
        layout.addLayout(self._buttons_row)
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
        action: Button | None = None,
        buttons: Sequence[Button] = (),
    ) -> None:
        """Show the banner (replacing any earlier message, progress included); `action` adds a (label,
        callback) button that hides the banner, `buttons` ones that keep it open."""
        self.progress.hide()
        self._set_buttons(buttons)
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

    def show_progress(self, message: str, fraction: float, step: str = "") -> None:
        """Show a job's progress (0..1) and its current step, in place of any earlier message."""
        self.show_message(message, step, level="info")
        self.progress.setValue(round(100 * max(0.0, min(1.0, fraction))))
        self.progress.show()

    def button(self, label: str) -> QPushButton | None:
        """The current message's button with this label, if it has one (for tests and shortcuts)."""
        if self.action_button.isVisibleTo(self) and self.action_button.text() == label:
            return self.action_button
        return next((b for b in self.buttons if b.text() == label), None)

    def text(self) -> str:
        """The message and hint as plain text (for tests and logs)."""
        return f"{self.message_label.text()} {self.hint_label.text()}"

    def _set_buttons(self, buttons: Sequence[Button]) -> None:
        for old in self.buttons:
            self._buttons_row.removeWidget(old)
            old.deleteLater()
        self.buttons = []
        for label, callback in buttons:
            button = QPushButton(label)
            button.clicked.connect(lambda _checked=False, run=callback: run())
            self._buttons_row.addWidget(button)
            self.buttons.append(button)

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
