"""The Chat tab's feedback row: judge the last answers, and train on the verdicts.

Under the transcripts, once every shown side has answered: "Left is better" / "Right is better" (when
comparing), or "Edit the answer…" (a dialog) to rewrite the right-hand (tuned) answer into the one wanted (the
edit is then the chosen answer, the model's own the rejected one).  Each verdict is one preference pair
appended to RUN_DIR/feedback/preferences.jsonl (core.feedback), where RUN_DIR is the run whose model
answers on the right; the row says how many pairs that run has.  "Train on my feedback" asks (sig_train)
for a DPO or ORPO run on them that continues the run's adapter.

It reads the Chat tab's sides and the session's histories; it does not send messages or load models.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tunesmith.core.feedback import append_preference, count_preferences
from tunesmith.desktop.logic.feedback_run import FEEDBACK_METHODS


class FeedbackBar(QWidget):
    """Signals: sig_train(str run_dir, str method): train on this run's feedback ("dpo" or "orpo")."""

    sig_train = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.run_dir: str | None = None
        self.prompt: list[dict] = []  # the conversation the shown answers reply to
        self.answers: list[str] = []  # the last answer of each shown side, left to right
        self._judged: tuple | None = None  # the answers a verdict was already saved for
        self.left_button = QPushButton("Left is better")
        self.right_button = QPushButton("Right is better")
        for button, side in ((self.left_button, "left"), (self.right_button, "right")):
            button.setToolTip(f"Save the {side} answer as the better one: a preference pair to train on.")
        self.edit_button = QPushButton("Edit the answer…")
        self.edit_button.setToolTip(
            "Rewrite the right-hand answer into the one you wanted: your version is saved as the better\n"
            "answer, the model's own as the worse one."
        )
        # A dialog, not a row under the transcripts: they keep their room on a 1024x700 screen.
        self.edit_dialog = QDialog(self)
        self.edit_dialog.setWindowTitle("Edit the answer")
        self.editor = QPlainTextEdit()
        self.save_edit_button = QPushButton("Save my version")
        self.save_edit_button.setObjectName("primary")
        self.cancel_edit_button = QPushButton("Cancel")
        self.count_label = QLabel()
        self.note_label = QLabel()
        self.note_label.setObjectName("hint")
        self.note_label.setWordWrap(True)
        self.method_combo = QComboBox()
        for key, label in FEEDBACK_METHODS.items():
            self.method_combo.addItem(label, key)
        self.method_combo.setToolTip(
            "DPO learns from the pairs against the model as it is now; ORPO needs no reference."
        )
        self.train_button = QPushButton("Train on my feedback")
        self.train_button.setToolTip(
            "Open the Train tab with a run that learns from these pairs, continuing this run's adapter."
        )
        self._build_layout()
        self.left_button.clicked.connect(lambda: self._prefer(0))
        self.right_button.clicked.connect(lambda: self._prefer(1))
        self.edit_button.clicked.connect(self._start_edit)
        self.save_edit_button.clicked.connect(self._save_edit)
        self.cancel_edit_button.clicked.connect(self.edit_dialog.reject)
        self.train_button.clicked.connect(self._train)
        self._update()

    def _build_layout(self) -> None:
        row = QHBoxLayout()
        for widget in (self.left_button, self.right_button, self.edit_button):
            row.addWidget(widget)
        row.addWidget(self.count_label, 1)
        row.addWidget(self.method_combo)
        row.addWidget(self.train_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.note_label)
        explain = QLabel(
            "Rewrite the answer into the one you wanted. Your version is saved as the better answer, "
            "the model's own as the worse one."
        )
        explain.setWordWrap(True)
        edit_buttons = QHBoxLayout()
        edit_buttons.addStretch(1)
        edit_buttons.addWidget(self.save_edit_button)
        edit_buttons.addWidget(self.cancel_edit_button)
        dialog = QVBoxLayout(self.edit_dialog)
        dialog.addWidget(explain)
        dialog.addWidget(self.editor, 1)
        dialog.addLayout(edit_buttons)
        self.edit_dialog.resize(560, 300)

    # -- what is shown ---------------------------------------------------------------------------
    def refresh(self, chat: Any) -> None:
        """Read the Chat tab's state: whose run the right-hand answers belong to, and whether every shown
        side has answered the same last message (only then can they be judged)."""
        sides = chat.sides()
        self.run_dir = _run_of(chat, sides[-1])
        histories = [chat.session.histories.get(side, []) for side in sides]
        answered = all(len(h) >= 2 and h[-1]["role"] == "assistant" for h in histories) and (
            len({h[-2]["content"] for h in histories}) == 1
        )
        if answered and not chat.session.is_busy():
            system = chat.system_edit.text().strip()
            # The pair's prompt is the conversation the right-hand (tuned) model answered: what it sees.
            self.prompt = [{"role": "system", "content": system}] * bool(system) + [
                dict(message) for message in histories[-1][:-1]
            ]
            self.answers = [h[-1]["content"] for h in histories]
        else:
            self.prompt, self.answers = [], []
        self._update()

    def _update(self) -> None:
        judged = self._judged == self._key()
        can_judge = bool(self.run_dir and self.answers) and not judged
        self.left_button.setVisible(len(self.answers) == 2 or not self.answers)
        self.right_button.setVisible(self.left_button.isVisibleTo(self))
        for button in (self.left_button, self.right_button):
            button.setEnabled(can_judge and len(self.answers) == 2)
        self.edit_button.setEnabled(can_judge)
        count = count_preferences(self.run_dir) if self.run_dir else 0
        self.count_label.setText(pairs_text(count) if self.run_dir else "")
        self.train_button.setEnabled(count > 0)
        self.method_combo.setEnabled(count > 0)
        note = ""
        if not self.run_dir:
            note = "Feedback is saved with a trained run: pick one under Model to judge its answers."
        elif judged:
            note = "Saved. Send another message to judge its answers."
        self._say(note)

    def _say(self, note: str) -> None:
        self.note_label.setText(note)
        self.note_label.setVisible(bool(note))  # no empty line under the transcripts

    def _key(self) -> tuple:
        return (self.run_dir, tuple(m["content"] for m in self.prompt), tuple(self.answers))

    # -- verdicts --------------------------------------------------------------------------------
    def _prefer(self, better: int) -> None:
        self._save(self.answers[better], self.answers[1 - better])

    def _start_edit(self) -> None:
        self.editor.setPlainText(self.answers[-1])
        self.edit_dialog.open()  # window-modal, without blocking the event loop
        self.editor.setFocus()

    def _save_edit(self) -> None:
        if self._save(self.editor.toPlainText(), self.answers[-1]):
            self.edit_dialog.accept()

    def _save(self, chosen: str, rejected: str) -> bool:
        """Append the pair; a pair that cannot be saved (the same answer twice, an empty one) is said."""
        if not self.run_dir or not self.answers:
            return False
        try:
            append_preference(self.run_dir, self.prompt, chosen, rejected)
        except (ValueError, OSError) as exc:
            self._say(f"Not saved: {exc}.")
            return False
        self._judged = self._key()
        self._update()
        return True

    def _train(self) -> None:
        if self.run_dir:
            self.sig_train.emit(self.run_dir, self.method_combo.currentData())


def pairs_text(count: int) -> str:
    """'3 preference pairs saved for this run'."""
    return f"{count} preference pair{'' if count == 1 else 's'} saved for this run"


def _run_of(chat: Any, side: str) -> str | None:
    """The run folder whose model answers on `side` (None: a GGUF file, not a run of ours)."""
    if side == "tuned":
        return chat.controller.training.last_run_dir
    if side == "run":
        run = chat.model_combo.run()
        return str(run.path) if run is not None else None
    if side == "adapter":
        return chat.session.lora.run_dir
    return None
