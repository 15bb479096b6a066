"""The Chat tab: talk to the model just trained, to a run trained earlier (the runs folder's past runs),
to a GGUF file, or to the base GGUF with a LoRA adapter GGUF switched on or off and scaled; optionally
side by side with the base model (the same message goes to both).  Next to a GGUF, the base is the base
GGUF (llama.cpp); next to a trained model, the transformers base it was trained from.

Send stays disabled, with the reason on screen and in its tooltip, until the chosen model exists (a
message is never left unanswered).  Each column shows one block per message, each answer under the
name of the model that wrote it; when a column's model changes, a divider starts a new conversation,
and a side that joins midway (comparing) is given the conversation so far, so both sides always answer
the same history.

Engines are loaded by the controller in the background; answers stream from `controller.chat` (a
ChatSession running on a QThread).  This tab only builds messages and shows text.
"""

from __future__ import annotations

import contextlib
import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tunesmith.desktop.adapter_controls import AdapterControls
from tunesmith.desktop.chat_model_picker import ChatModelPicker
from tunesmith.desktop.chat_transcript import ChatTranscript
from tunesmith.desktop.feedback_bar import FeedbackBar
from tunesmith.desktop.logic.past_runs import trained_runs

SIDE_TITLES = {
    "tuned": "Your tuned model",
    "run": "A past run",
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
        self._busy = False
        self._answer_stopped = False  # the last answer was stopped by the user
        self._shown_models: dict[str, str] = {}  # side -> the model its transcript shows now
        self.model_combo = ChatModelPicker()
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
        self.transcripts = {side: ChatTranscript() for side in SIDE_TITLES}
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
        self.status_label = QLabel("")
        # Why Send is disabled, when it is (the same words as its tooltip).
        self.reason_label = QLabel("")
        self.reason_label.setObjectName("sendReason")
        self.reason_label.setWordWrap(True)
        # Where the shown models compute (llama.cpp on the GPU or the CPU, transformers on ...).
        self.where_label = QLabel("")
        self.where_label.setObjectName("hint")
        self.feedback = FeedbackBar()  # judge the answers; train on the verdicts
        self._build_layout()
        self._connect()
        self.refresh_runs()
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
        for side in ("base", "base-gguf", "tuned", "run", "gguf", "adapter"):
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
        layout.addWidget(self.feedback)
        status = QHBoxLayout()
        status.addWidget(self.status_label, 1)
        status.addWidget(self.where_label)
        layout.addLayout(status)
        layout.addWidget(self.reason_label)
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
        self.controller.sig_output_dir.connect(lambda _folder: self.refresh_runs())
        self.controller.training.sig_state.connect(lambda _state: self._refresh_send())
        self.controller.training.sig_run_ended.connect(self.refresh_runs)
        self.adapter_controls.sig_changed.connect(self._on_adapter_changed)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        self.refresh_runs()  # runs may have been added or removed outside the app meanwhile
        super().showEvent(event)

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
        self._sync_conversation()
        self._refresh_send()
        self.feedback.refresh(self)

    def refresh_runs(self) -> None:
        """List the runs folder's trained runs in the picker.  With no model trained in this session, the
        newest past run is chosen, so a model trained before a restart answers at once."""
        folder = self.controller.config.output_dir
        self.model_combo.set_runs(trained_runs(folder), folder)
        training = self.controller.training
        if (
            not self._busy
            and self.model_combo.side() == "tuned"
            and training.tuned is None
            and not training.is_running()
            and self.model_combo.runs
        ):
            self.model_combo.setCurrentIndex(1)  # the newest run, right after "the model you just trained"
        self._update_sides()

    def use_run(self, run_dir: str) -> bool:
        """Chat with the model a past run trained (e.g. one picked in the run history); False when the
        folder holds no trained adapter (it is then not in the picker)."""
        self.refresh_runs()
        if not self.model_combo.select_run(str(run_dir)):
            return False
        self._update_sides()
        return True

    def not_ready_reason(self) -> str:
        """Why the chosen model cannot answer yet, in words ("" when it can)."""
        main = self.model_combo.side()
        training = self.controller.training
        if main == "tuned" and training.tuned is None:
            if training.is_running():
                return "The model is still training: chat with it when the run ends, or pick a past run."
            return (
                "No model has been trained in this session yet: train one in the Train tab, or pick a "
                "past run or a GGUF file under Model."
            )
        if main == "run" and self.model_combo.run() is None:
            return "Pick a past run under Model."
        if main == "gguf" and not self.gguf_path:
            return "Open a GGUF file first (Open GGUF…)."
        if main == "adapter" and not self.session.lora.path:
            return "Open a LoRA adapter GGUF first (Open GGUF…), or export one from the Train tab."
        return ""

    def _refresh_send(self) -> None:
        reason = self.not_ready_reason()
        self.send_button.setEnabled(not self._busy and not reason)
        self.send_button.setToolTip(reason or "Send the message (Ctrl+Enter)")
        self.reason_label.setText(f"Send is off: {reason}" if reason else "")
        self.reason_label.setVisible(bool(reason))

    # -- which model each column shows ------------------------------------------------------------
    def _base_source(self) -> str:
        """The model the "base" side loads: the past run's own base, else the configured model."""
        run = self.model_combo.run()
        return run.base_source if run is not None else self.controller.config.model.source

    def _model_key(self, side: str) -> str:
        """What `side` answers with now; a column whose key changes starts a new conversation."""
        if side == "tuned":
            return f"tuned:{self.controller.training.last_run_dir}"
        if side == "run":
            run = self.model_combo.run()
            return str(run.path) if run is not None else ""
        if side == "base":
            return self._base_source()
        if side == "gguf":
            return self.gguf_path or ""
        if side == "adapter":
            return self.session.lora.path or ""
        return self.session.lora.run_dir or ""  # base-gguf: the base of the adapter's run

    def model_name(self, side: str) -> str:
        """The name an answer of `side` is shown under (the model it comes from)."""
        if side == "tuned" and self.controller.training.last_run_dir:
            return f"Your tuned model ({Path(self.controller.training.last_run_dir).name})"
        run = self.model_combo.run()
        if side == "run" and run is not None:
            return f"Run {run.name}"
        if side == "base":
            return f"Base model ({Path(self._base_source()).name or self._base_source()})"
        if side == "gguf" and self.gguf_path:
            return f"GGUF {Path(self.gguf_path).name}"
        if side == "adapter":
            name = Path(self.session.lora.path or "").name or "no adapter chosen"
            on = self.adapter_controls.enabled()
            return f"Base + LoRA adapter {name} ({f'scale {self.adapter_controls.scale():.2f}' if on else 'OFF'})"
        return SIDE_TITLES[side]

    def _sync_conversation(self) -> None:
        """After the shown models changed: a column whose model changed starts over under a divider, and
        a side shown next to the chosen model is given its conversation (both answer the same history)."""
        sides = self.sides()
        for side in sides:
            key, name = self._model_key(side), self.model_name(side)
            self.titles[side].setText(f"<b>{html.escape(name)}</b>")
            before = self._shown_models.get(side)
            self._shown_models[side] = key
            if before is not None and before != key:
                self.session.restart(side)
                if self.transcripts[side].messages:
                    self.transcripts[side].add_divider(f"Now chatting with {name}: a new conversation")
        main = sides[-1]
        for side in sides[:-1]:
            if self.session.join(side, main):
                self._show_joined(side, main)

    def _show_joined(self, side: str, main: str) -> None:
        """Show in `side`'s column the conversation it was given (answers under the model that wrote them)."""
        transcript, history = self.transcripts[side], self.session.histories[side]
        if not history:
            if transcript.messages and transcript.messages[-1].kind != "divider":
                transcript.add_divider("A new conversation")
            return
        main_name = self.model_name(main)
        transcript.add_divider(f"The conversation so far, as {main_name} had it")
        for message in history:
            user = message["role"] == "user"
            transcript.add_message(
                "You" if user else main_name, message["content"], "user" if user else "model"
            )

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
        self.model_combo.select_side("gguf")
        self._update_sides()
        self.status_label.setText(f"Ready to chat with {path}.")

    def use_adapter(self, path: str, run_dir: str | None = None) -> None:
        """Chat with the base GGUF + this LoRA adapter GGUF (of `run_dir`, by default the last run)."""
        self.session.set_adapter_file(path, run_dir or self.controller.training.last_run_dir)
        self.model_combo.select_side("adapter")
        self._update_sides()
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
        self.titles["adapter"].setText(f"<b>{html.escape(self.model_name('adapter'))}</b>")

    def _on_tuned_available(self, available: bool) -> None:
        if available:
            self.model_combo.select_side("tuned")
            self._update_sides()
            self.status_label.setText("Your tuned model is ready: say something!")
        self._refresh_send()

    # -- sending --------------------------------------------------------------------------------
    def send(self) -> None:
        """Send the typed message to every shown side; answers stream in."""
        text = self.input_edit.toPlainText().strip()
        if not text or self._busy or self.session.is_busy():
            return
        self._sync_conversation()  # e.g. the configured model (the base) changed since
        if self.not_ready_reason():
            self._refresh_send()  # the reason is on screen; the message stays in the box
            return
        sides = self.sides()
        self.input_edit.clear()
        self._set_busy(True)
        loading = "Loading the model…"
        if self.session.lora.switch is None and {"base-gguf", "adapter"} & set(sides):
            loading = "Loading the base GGUF (the first time, it is written from the base model)…"
        self.status_label.setText(
            loading if any(s not in self.session.engines for s in sides) else "Thinking…"
        )
        run = self.model_combo.run()
        self.controller.prepare_chat(
            sides,
            self.gguf_path,
            lambda: self._send_now(text, sides),
            lambda error: self._load_failed(error, text),
            run_dir=str(run.path) if run is not None else None,
            base_source=self._base_source(),
        )

    def _show_where(self, sides: list[str]) -> None:
        """Say where each shown model runs (e.g. "Runs on: llama.cpp on the GPU (all layers)")."""
        places = {
            self.controller.chat_placement(self.session.engines[s])
            for s in sides
            if s in self.session.engines
        }
        self.where_label.setText(f"Runs on: {', '.join(sorted(places))}" if places else "")

    def _load_failed(self, error: BaseException, text: str) -> None:
        """The model did not load: nothing was sent, so the message goes back into the box."""
        self._set_busy(False)
        self.status_label.setText(f"Could not load the model: {error}")
        if not self.input_edit.toPlainText().strip():
            self.input_edit.setPlainText(text)

    def _send_now(self, text: str, sides: list[str]) -> None:
        self._show_where(sides)
        try:
            self.session.send(text, sides, self.controller.chat_settings(self.generation_values()))
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            self._load_failed(exc, text)
            return
        for side in sides:
            self.transcripts[side].add_message("You", text, "user")
        self.status_label.setText("Answering…")
        self._answer_stopped = False

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
        self.feedback.refresh(self)

    # -- streaming ------------------------------------------------------------------------------
    def _on_begin(self, side: str) -> None:
        self.transcripts[side].add_message(self.model_name(side))

    def _on_token(self, side: str, piece: str) -> None:
        self.transcripts[side].append_text(piece)

    def _on_end(self, side: str, stopped: bool) -> None:
        if stopped:
            self._answer_stopped = True  # the status then says "Stopped.", not "Done."
            self._on_token(side, " [stopped]")

    def _on_failed(self, side: str, data: dict) -> None:
        self.transcripts[side].add_message("", f"⚠ {data.get('message', '')} {data.get('hint', '')}", "error")

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._refresh_send()
        self.stop_button.setEnabled(busy)
        self.model_combo.setEnabled(not busy)
        self.compare_check.setEnabled(not busy)
        self.gguf_button.setEnabled(not busy)
        if not busy and self.status_label.text() in ("Answering…", "Thinking…"):
            self.status_label.setText("Stopped." if self._answer_stopped else "Done.")
        self.feedback.refresh(self)  # the answers just ended can be judged

    def answer_text(self, side: str) -> str:
        """The transcript's plain text (tests use it)."""
        return self.transcripts[side].toPlainText()


def _spin(widget, low, high, value, tooltip: str, step):
    widget.setRange(low, high)
    widget.setValue(value)
    widget.setSingleStep(step)
    widget.setToolTip(tooltip)
    return widget
