"""The Chat tab: talk to the model just trained, or to a GGUF file, with streamed answers; optionally
side by side with the base model (the same message goes to both).

Engines are loaded by the controller in the background; answers stream from `controller.chat` (a
ChatSession running on a QThread).  This tab only builds messages and shows text.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

SIDE_TITLES = {"tuned": "Your tuned model", "base": "Base model", "gguf": "GGUF model"}


class ChatTab(QWidget):
    """Model choice, generation settings, one or two transcripts, and the message box."""

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.session = controller.chat
        self.gguf_path: str | None = None
        self.model_combo = QComboBox()
        self.model_combo.addItem("The model you just trained", "tuned")
        self.model_combo.addItem("A GGUF file (llama.cpp)", "gguf")
        self.model_combo.setToolTip("Which model answers. Train one first, or open an exported GGUF file.")
        self.gguf_button = QPushButton("Open GGUF…")
        self.compare_check = QCheckBox("Compare with the base model")
        self.compare_check.setToolTip(
            "Send each message to the untouched base model as well, side by side,\n"
            "to see what fine-tuning changed."
        )
        self.system_edit = QLineEdit()
        self.system_edit.setPlaceholderText("System prompt (optional): e.g. 'You are a friendly pirate.'")
        self.system_edit.setToolTip("Instructions the model reads before the conversation.")
        self.temperature = _spin(
            QDoubleSpinBox(),
            0.0,
            2.0,
            0.7,
            "Randomness. 0 = always the most likely\n"
            "word; higher = more varied and creative, and more mistakes.",
            0.1,
        )
        self.top_p = _spin(
            QDoubleSpinBox(),
            0.05,
            1.0,
            0.9,
            "Only pick among the most likely words that\n"
            "together make up this share. Lower = safer, blander.",
            0.05,
        )
        self.max_tokens = _spin(
            QSpinBox(), 1, 8192, 256, "Longest answer, in tokens (about ¾ of a word).", 32
        )
        self.transcripts = {side: QTextBrowser() for side in SIDE_TITLES}
        self.titles = {side: QLabel(f"<b>{title}</b>") for side, title in SIDE_TITLES.items()}
        self.input_edit = QPlainTextEdit()
        self.input_edit.setPlaceholderText("Type a message and press Ctrl+Enter")
        self.input_edit.setMaximumHeight(90)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.setToolTip("Send the message (Ctrl+Enter)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Start a new conversation")
        self.status_label = QLabel("Train a model (or open a GGUF file) to chat with it.")
        self._build_layout()
        self._connect()
        self._update_sides()
        self._set_busy(False)

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.model_combo)
        top.addWidget(self.gguf_button)
        top.addWidget(self.compare_check)
        top.addStretch(1)
        knobs = QHBoxLayout()
        knobs.addWidget(self.system_edit, 1)
        for label, widget in (
            ("Temperature", self.temperature),
            ("Top-p", self.top_p),
            ("Max new tokens", self.max_tokens),
        ):
            knobs.addWidget(QLabel(label + ":"))
            knobs.addWidget(widget)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("chatSplitter")
        self.columns: dict[str, QWidget] = {}
        for side in ("base", "tuned", "gguf"):
            column = QWidget()
            column_layout = QVBoxLayout(column)
            column_layout.setContentsMargins(0, 0, 0, 0)
            column_layout.addWidget(self.titles[side])
            column_layout.addWidget(self.transcripts[side], 1)
            self.columns[side] = column
            self.splitter.addWidget(column)
        buttons = QVBoxLayout()
        for button in (self.send_button, self.stop_button, self.clear_button):
            buttons.addWidget(button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.input_edit, 1)
        bottom.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(knobs)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.status_label)
        layout.addLayout(bottom)

    def _connect(self) -> None:
        self.model_combo.currentIndexChanged.connect(self._update_sides)
        self.compare_check.toggled.connect(self._update_sides)
        self.gguf_button.clicked.connect(self.choose_gguf)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.session.stop)
        self.clear_button.clicked.connect(self.clear)
        self.session.sig_begin.connect(self._on_begin)
        self.session.sig_token.connect(self._on_token)
        self.session.sig_end.connect(self._on_end)
        self.session.sig_failed.connect(self._on_failed)
        self.session.sig_busy.connect(self._set_busy)
        self.controller.sig_tuned_available.connect(self._on_tuned_available)

    # -- choices --------------------------------------------------------------------------------
    def sides(self) -> list[str]:
        """The sides that answer the next message, left to right."""
        main = self.model_combo.currentData()
        return ["base", main] if self.compare_check.isChecked() else [main]

    def _update_sides(self) -> None:
        shown = self.sides()
        for side, column in self.columns.items():
            column.setVisible(side in shown)
        self.gguf_button.setVisible(self.model_combo.currentData() == "gguf")

    def choose_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.use_gguf(path)

    def use_gguf(self, path: str) -> None:
        """Chat with this GGUF file (e.g. right after exporting it)."""
        self.gguf_path = path
        self.session.engines.pop("gguf", None)
        self.model_combo.setCurrentIndex(self.model_combo.findData("gguf"))
        self.titles["gguf"].setText(f"<b>GGUF: {html.escape(path.rsplit('/', 1)[-1])}</b>")
        self.status_label.setText(f"Ready to chat with {path}.")

    def _on_tuned_available(self, available: bool) -> None:
        if available:
            self.model_combo.setCurrentIndex(self.model_combo.findData("tuned"))
            self.status_label.setText("Your tuned model is ready: say something!")

    # -- sending --------------------------------------------------------------------------------
    def send(self) -> None:
        """Send the typed message to every shown side; answers stream in."""
        text = self.input_edit.toPlainText().strip()
        if not text or self.session.is_busy():
            return
        sides = self.sides()
        self.input_edit.clear()
        for side in sides:
            self._append(side, f"<p><b>You:</b> {html.escape(text)}</p>")
        self._set_busy(True)
        self.status_label.setText(
            "Loading the model…" if any(s not in self.session.engines for s in sides) else "Thinking…"
        )
        self.controller.prepare_chat(
            sides, self.gguf_path, lambda: self._send_now(text, sides), self._load_failed
        )

    def _load_failed(self, error: BaseException) -> None:
        self._set_busy(False)
        self.status_label.setText(f"Could not load the model: {error}")

    def _send_now(self, text: str, sides: list[str]) -> None:
        try:
            self.session.send(text, sides, self.controller.chat_settings(self.settings_values()))
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            self._set_busy(False)
            self.status_label.setText(str(exc))
            return
        self.status_label.setText("Answering…")

    def settings_values(self) -> dict:
        """The generation settings as plain values."""
        return {
            "system_prompt": self.system_edit.text(),
            "temperature": self.temperature.value(),
            "top_p": self.top_p.value(),
            "max_new_tokens": self.max_tokens.value(),
        }

    def clear(self) -> None:
        """Forget the conversation and empty the transcripts."""
        self.session.stop()
        self.session.clear()
        for transcript in self.transcripts.values():
            transcript.clear()

    # -- streaming ------------------------------------------------------------------------------
    def _on_begin(self, side: str) -> None:
        self._append(side, f"<p><b>{SIDE_TITLES[side]}:</b> </p>")

    def _on_token(self, side: str, piece: str) -> None:
        transcript = self.transcripts[side]
        cursor = transcript.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)
        transcript.setTextCursor(cursor)
        transcript.ensureCursorVisible()

    def _on_end(self, side: str, stopped: bool) -> None:
        if stopped:
            self._on_token(side, " [stopped]")

    def _on_failed(self, side: str, data: dict) -> None:
        self._append(
            side,
            f"<p style='color:#c0392b'>⚠ {html.escape(data.get('message', ''))} "
            f"{html.escape(data.get('hint', ''))}</p>",
        )

    def _append(self, side: str, fragment: str) -> None:
        transcript = self.transcripts[side]
        transcript.moveCursor(QTextCursor.MoveOperation.End)
        transcript.insertHtml(fragment)
        transcript.append("")

    def _set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.model_combo.setEnabled(not busy)
        self.compare_check.setEnabled(not busy)
        if not busy and self.status_label.text() in ("Answering…", "Thinking…"):
            self.status_label.setText("Done.")

    def answer_text(self, side: str) -> str:
        """The transcript's plain text (tests use it)."""
        return self.transcripts[side].toPlainText()


def _spin(widget, low, high, value, tooltip: str, step):
    widget.setRange(low, high)
    widget.setValue(value)
    widget.setSingleStep(step)
    widget.setToolTip(tooltip)
    return widget
