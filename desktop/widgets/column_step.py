"""The Dataset tab's column step: "which column is the question, which the answer?".

Shown when a table's columns are not named as usual (question/answer, prompt/response, ...): two
drop-downs over the columns the file has, and a button that hands back the choice as the engine's
`columns` text ("question=COL,answer=COL").  Knows nothing about reading files or where the choice is
remembered: the tab does both.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from tunesmith.core.data.formats import columns_text, parse_columns

_ID_LIKE = re.compile(r"^(id|idx|index|key|row|#|no\.?|.*[_ ]id)$", re.IGNORECASE)


class ColumnStep(QFrame):
    """sig_chosen(str): the columns chosen, as "question=COL,answer=COL"."""

    sig_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("data.columns")  # the widget that edits that setting
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.question_combo = QComboBox()
        self.question_combo.setToolTip("The column that holds what the user asks (the model reads it).")
        self.answer_combo = QComboBox()
        self.answer_combo.setToolTip("The column that holds the answer the model should learn to give.")
        self.use_button = QPushButton("Use these columns")
        self.use_button.setToolTip("Read the file again with these columns; remembered for this file.")
        layout = QHBoxLayout(self)
        layout.addWidget(QLabel("Which column is the <b>question</b>?"))
        layout.addWidget(self.question_combo)
        layout.addWidget(QLabel("… and the <b>answer</b>?"))
        layout.addWidget(self.answer_combo)
        layout.addWidget(self.use_button)
        layout.addStretch(1)
        self.use_button.clicked.connect(self._use)
        self.question_combo.currentTextChanged.connect(self._check)
        self.answer_combo.currentTextChanged.connect(self._check)
        self.hide()

    def offer(self, columns: list[str], chosen: str = "") -> None:
        """Show the step over `columns`, preselecting `chosen` ("question=..,answer=..") or the first two."""
        current = _parsed(chosen)
        # Without a choice yet: the first two columns that are not row numbers or keys.
        likely = [column for column in columns if not _ID_LIKE.match(column)] or columns
        defaults = {"question": likely[0], "answer": likely[min(1, len(likely) - 1)]}
        for combo, role in ((self.question_combo, "question"), (self.answer_combo, "answer")):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(columns)
            combo.setCurrentText(current[role] if current.get(role) in columns else defaults[role])
            combo.blockSignals(False)
        self._check()
        self.show()

    def chosen(self) -> str:
        return columns_text(
            {"question": self.question_combo.currentText(), "answer": self.answer_combo.currentText()}
        )

    def _check(self) -> None:
        question, answer = self.question_combo.currentText(), self.answer_combo.currentText()
        self.use_button.setEnabled(bool(question) and bool(answer) and question != answer)

    def _use(self) -> None:
        self.sig_chosen.emit(self.chosen())


def _parsed(text: str) -> dict[str, str]:
    try:
        return parse_columns(text)
    except ValueError:
        return {}
