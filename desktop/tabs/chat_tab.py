"""The Chat tab: talk to the model just trained, to a GGUF file, or to the base GGUF with a LoRA
adapter GGUF switched on or off and scaled; optionally side by side with the base model (the same
message goes to both).  Next to a GGUF, the base is the base GGUF (llama.cpp); next to the model just
trained, the transformers base.

Engines are loaded by the controller in the background; answers stream from `controller.chat` (a
ChatSession running on a QThread).  This tab only builds messages and shows text.
"""

from __future__ import annotations

import contextlib
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

from tunesmith.desktop.adapter_controls import AdapterControls

SIDE_TITLES = {
    "tuned": "Your tuned model",
    "base": "Base model",
    "gguf": "GGUF model",
    "adapter": "Base + your LoRA adapter",
    "base-gguf": "Base model (GGUF)",
}


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
        self.model_combo.addItem("Base GGUF + LoRA adapter GGUF (llama.cpp)", "adapter")
        self.model_combo.setToolTip(
            "Which model answers. Train one first, or open an exported GGUF file\n"
            "(a whole model, or a LoRA adapter to apply to the base model)."
        )
        self.gguf_button = QPushButton("Open GGUF…")
        self.gguf_button.setToolTip("Open a GGUF model, or a LoRA adapter exported as GGUF.")
        self.adapter_controls = AdapterControls()
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
        # Where the shown models compute (llama.cpp on the GPU or the CPU, transformers on ...).
        self.where_label = QLabel("")
        self.where_label.setObjectName("hint")
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
        top.addWidget(self.adapter_controls, 1)
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
        for side in ("base", "base-gguf", "tuned", "gguf", "adapter"):
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
        status = QHBoxLayout()
        status.addWidget(self.status_label, 1)
        status.addWidget(self.where_label)
        layout.addLayout(status)
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
        self.adapter_controls.sig_changed.connect(self._on_adapter_changed)

    # -- choices --------------------------------------------------------------------------------
    def sides(self) -> list[str]:
        """The sides that answer the next message, left to right."""
        main = self.model_combo.currentData()
        if not self.compare_check.isChecked():
            return [main]
        # A GGUF is compared with the base GGUF (same engine, same arithmetic), the trained model
        # with the transformers base.
        return ["base-gguf" if main in ("gguf", "adapter") else "base", main]

    def _update_sides(self) -> None:
        shown = self.sides()
        for side, column in self.columns.items():
            column.setVisible(side in shown)
        main = self.model_combo.currentData()
        self.gguf_button.setVisible(main in ("gguf", "adapter"))
        self.adapter_controls.setVisible(main == "adapter")

    def choose_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a GGUF model or LoRA adapter", "", "GGUF files (*.gguf)"
        )
        if not path:
            return
        try:
            adapter = self.controller.is_adapter_gguf(path)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is reported, not raised
            self.status_label.setText(f"{path} cannot be read as a GGUF file: {exc}")
            return
        self.use_adapter(path) if adapter else self.use_gguf(path)

    def use_gguf(self, path: str) -> None:
        """Chat with this GGUF file (e.g. right after exporting it)."""
        self.gguf_path = path
        self.session.engines.pop("gguf", None)
        self.model_combo.setCurrentIndex(self.model_combo.findData("gguf"))
        self.titles["gguf"].setText(f"<b>GGUF: {html.escape(path.rsplit('/', 1)[-1])}</b>")
        self.status_label.setText(f"Ready to chat with {path}.")

    def use_adapter(self, path: str, run_dir: str | None = None) -> None:
        """Chat with the base GGUF + this LoRA adapter GGUF (of `run_dir`, by default the last run)."""
        self.session.set_adapter_file(path, run_dir or self.controller.training.last_run_dir)
        self.model_combo.setCurrentIndex(self.model_combo.findData("adapter"))
        self._update_adapter_title()
        self.status_label.setText(
            f"Ready to chat with the base model + {path.rsplit('/', 1)[-1]}. "
            "Switch the adapter off or change its scale at any time."
        )

    def offer_export(self, result) -> bool:
        """Open the chat on a finished export when it is a GGUF ("Chat with this model"); True if so."""
        path = str(getattr(result, "path", ""))
        fmt = getattr(result, "fmt", "")
        if fmt == "gguf-lora":
            self.use_adapter(path)
        elif path.endswith(".gguf"):
            self.use_gguf(path)
        else:
            return False
        return True

    def _on_adapter_changed(self, enabled: bool, scale: float) -> None:
        self.session.set_adapter_options(enabled, scale)
        self._update_adapter_title()

    def _update_adapter_title(self) -> None:
        name = (self.session.lora.path or "").rsplit("/", 1)[-1] or "no adapter chosen"
        state = f"scale {self.adapter_controls.scale():.2f}" if self.adapter_controls.enabled() else "OFF"
        self.titles["adapter"].setText(f"<b>Base + LoRA adapter {html.escape(name)} ({state})</b>")

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
        loading = "Loading the model…"
        if self.session.lora.switch is None and {"base-gguf", "adapter"} & set(sides):
            loading = "Loading the base GGUF (the first time, it is written from the base model)…"
        self.status_label.setText(
            loading if any(s not in self.session.engines for s in sides) else "Thinking…"
        )
        self.controller.prepare_chat(
            sides, self.gguf_path, lambda: self._send_now(text, sides), self._load_failed
        )

    def _show_where(self, sides: list[str]) -> None:
        """Say where each shown model runs (e.g. "Runs on: llama.cpp on the GPU (all layers)")."""
        places = {
            self.controller.chat_placement(self.session.engines[s])
            for s in sides
            if s in self.session.engines
        }
        self.where_label.setText(f"Runs on: {', '.join(sorted(places))}" if places else "")

    def _load_failed(self, error: BaseException) -> None:
        self._set_busy(False)
        self.status_label.setText(f"Could not load the model: {error}")

    def _send_now(self, text: str, sides: list[str]) -> None:
        self._show_where(sides)
        try:
            self.session.send(text, sides, self.controller.chat_settings(self.generation_values()))
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            self._set_busy(False)
            self.status_label.setText(str(exc))
            return
        self.status_label.setText("Answering…")

    def generation_values(self) -> dict:
        """The generation settings as plain values (the engine's ChatSettings fields)."""
        return {
            "system_prompt": self.system_edit.text(),
            "temperature": self.temperature.value(),
            "top_p": self.top_p.value(),
            "max_new_tokens": self.max_tokens.value(),
        }

    def settings_values(self) -> dict:
        """Everything this tab remembers between launches: generation settings and the adapter's."""
        return {
            **self.generation_values(),
            "adapter_on": self.adapter_controls.enabled(),
            "adapter_scale": self.adapter_controls.scale(),
        }

    def restore_values(self, values: dict) -> None:
        """Put back what `settings_values` returned (missing or broken values keep their defaults)."""
        self.system_edit.setText(str(values.get("system_prompt", "")))
        for key, widget in (
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("max_new_tokens", self.max_tokens),
        ):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                widget.setValue(type(widget.value())(values[key]))
        with contextlib.suppress(TypeError, ValueError):
            on = values.get("adapter_on", True)
            on = on if isinstance(on, bool) else str(on).lower() == "true"
            self.adapter_controls.set_values(on, float(values.get("adapter_scale", 1.0)))

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
        self.gguf_button.setEnabled(not busy)
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
