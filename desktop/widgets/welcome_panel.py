"""The first-start welcome: what this computer can train, in plain words, shown as a panel in the window.

A panel rather than a dialog, so it never blocks anything (tests, screenshots, a user who wants to
start at once).  It first says what to do (1 Dataset, 2 Train, 3 Chat, with the sample already
loaded), and shows "Checking…" until the engine's `Capabilities` arrive, then their summary:
the headline, the model sizes that fit with their context, notes, and what to do (e.g. update the
driver).  "Got it" emits `sig_dismissed` (the window remembers it); ✕ only hides it this time.
Knows nothing about how the facts are gathered.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

TITLE = "Welcome to Tunesmith — what this computer can train"
CHECKING = "Checking your GPU and drivers…"
FIRST_STEPS = (
    "<b>Start here:</b> <b>1 Dataset</b> (a sample is already loaded) → <b>2 Train</b> (press Start) → "
    "<b>3 Chat</b> (talk to the result)"
)
# The machine's facts scroll within this height, so the panel never squeezes the tabs on a laptop.
BODY_MAX_HEIGHT = 110
# Inline rather than in app.qss: the panel is self-contained (and readable in dark themes too).
STYLE = (
    "QFrame#welcome { background: #e6f2ea; border: 1px solid #9cc9a9; border-radius: 4px; }"
    "QFrame#welcome QLabel { color: #202020; }"
)


class WelcomePanel(QFrame):
    """Signals: sig_dismissed() — the user pressed "Got it" (do not show it on the next start)."""

    sig_dismissed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("welcome")
        self.setStyleSheet(STYLE)
        self.title_label = QLabel(f"<b>{TITLE}</b>")
        self.steps_label = QLabel(FIRST_STEPS)  # one line: a wrapped label would squeeze the tabs
        # A text browser rather than a label: it scrolls its own text when the window is short (a
        # wrapped label in a scroll area would be cut instead).
        self.body_label = QTextBrowser()
        self.body_label.setObjectName("welcomeBody")
        self.body_label.setOpenExternalLinks(True)
        self.body_label.setFrameShape(QFrame.Shape.NoFrame)
        self.body_label.setStyleSheet("QTextBrowser { background: transparent; color: #202020; }")
        self.body_label.setMaximumHeight(BODY_MAX_HEIGHT)
        self.body_label.setMinimumHeight(40)  # two lines, scrolling, when the window is short
        self.got_it_button = QPushButton("Got it")
        self.got_it_button.setToolTip(
            "Hide this and do not show it at the next start (Help > Welcome shows it again)."
        )
        self.got_it_button.clicked.connect(self._dismiss)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setToolTip("Hide this for now (it comes back at the next start)")
        close.clicked.connect(self.hide)
        texts = QVBoxLayout()
        texts.addWidget(self.title_label)
        texts.addWidget(self.steps_label)
        texts.addWidget(self.body_label)
        buttons = QVBoxLayout()
        buttons.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        buttons.addStretch(1)
        buttons.addWidget(self.got_it_button)
        layout = QHBoxLayout(self)
        layout.addLayout(texts, 1)
        layout.addLayout(buttons)
        self._plain = ""
        self.show_checking()
        self.hide()

    def show_checking(self) -> None:
        """The facts are being gathered (torch is loading in the background)."""
        self._set_lines([CHECKING])

    def set_capabilities(self, capabilities: Any) -> None:
        """Show the engine's Capabilities (None: the check failed)."""
        if capabilities is None:
            self._set_lines(
                [
                    "Tunesmith could not check your GPU and drivers.",
                    "Training still works; the log (and `tunesmith info`) says more.",
                ]
            )
            return
        self._set_lines(capabilities.summary().splitlines())

    def text(self) -> str:
        """The body as plain text (for tests and logs)."""
        return self._plain

    def _set_lines(self, lines: list[str]) -> None:
        self._plain = "\n".join(lines)
        self.body_label.setHtml(summary_html(lines))

    def _dismiss(self) -> None:
        self.hide()
        self.sig_dismissed.emit()


def summary_html(lines: list[str]) -> str:
    """Capabilities.summary() lines as HTML: the headline bold, "  - " lines as bullet lists."""
    parts: list[str] = []
    in_list = False
    for index, line in enumerate(lines):
        item = line.startswith("  - ")
        if item and not in_list:
            parts.append("<ul style='margin-top:0; margin-bottom:0'>")
        if not item and in_list:
            parts.append("</ul>")
        in_list = item
        text = _code(html.escape(line[4:] if item else line))
        if item:
            parts.append(f"<li>{text}</li>")
        else:
            parts.append(f"<div>{f'<b>{text}</b>' if index == 0 else text}</div>")
    if in_list:
        parts.append("</ul>")
    return "".join(parts)


def _code(text: str) -> str:
    """`command` -> <code>command</code> (the engine writes shell commands between backticks)."""
    pieces = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))
