"""The Past runs dialog: every run of the runs folder with its date, method, dataset, steps and how it
ended; Show (or a double-click) draws the chosen run in the Train tab, where a stopped one can be
resumed; Chat with it opens a run that saved a trained model in the Chat tab; Evaluate… makes its
"did it work?" report.  "Another folder…" opens any run folder.  It only picks; the window does the
showing (the evaluation dialog, over this one, does its own work).
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tunesmith.desktop.eval_panel import EvalDialog
from tunesmith.desktop.logic.formatting import friendly_path
from tunesmith.desktop.logic.past_runs import PastRun, list_past_runs

COLUMNS = ("Started", "Run", "Method", "Dataset", "Steps", "How it ended")


class PastRunsDialog(QDialog):
    """After exec(): `chosen` is the run folder picked ("" when none), `chat` whether to chat with it
    rather than show its plots."""

    def __init__(self, runs_folder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Past runs")
        self.resize(860, 360)
        self.chosen = ""
        self.chat = False
        self.runs: list[PastRun] = list_past_runs(runs_folder)
        where = QLabel(
            f"Runs in {friendly_path(runs_folder)}"
            if self.runs
            else f"No runs yet in {friendly_path(runs_folder)}."
        )
        self.table = QTableWidget(len(self.runs), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        for row, run in enumerate(self.runs):
            cells = (run.when(), run.path.name, run.method.upper(), run.dataset, str(run.steps), run.status)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(run.status if column == len(cells) - 1 else str(run.path))
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.show_button = buttons.addButton("Show", QDialogButtonBox.ButtonRole.AcceptRole)
        self.show_button.setEnabled(bool(self.runs))
        self.chat_button = buttons.addButton("Chat with it", QDialogButtonBox.ButtonRole.ActionRole)
        self.chat_button.setToolTip("Talk to the model this run trained, in the Chat tab")
        self.chat_button.clicked.connect(self._chat_with_selected)
        self.eval_button = buttons.addButton("Evaluate…", QDialogButtonBox.ButtonRole.ActionRole)
        self.eval_button.setToolTip("Did it work? A report comparing this run's model with its base model")
        self.eval_button.clicked.connect(self._evaluate_selected)
        self.eval_dialog: EvalDialog | None = None
        other = buttons.addButton("Another folder…", QDialogButtonBox.ButtonRole.ActionRole)
        other.clicked.connect(self._choose_folder)
        buttons.accepted.connect(self._show_selected)
        buttons.rejected.connect(self.reject)
        self.table.cellDoubleClicked.connect(lambda row, _column: self._choose(row))
        self.table.itemSelectionChanged.connect(self._update_chat_button)
        self.chat_button.setEnabled(False)
        self.eval_button.setEnabled(False)
        if self.runs:
            self.table.selectRow(0)
        layout = QVBoxLayout(self)
        layout.addWidget(where)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self._runs_folder = runs_folder

    def _selected(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _update_chat_button(self) -> None:
        row = self._selected()
        can_chat = row is not None and self.runs[row].has_model
        self.chat_button.setEnabled(can_chat)
        self.eval_button.setEnabled(can_chat)  # a report needs the same: a saved trained model
        self.chat_button.setToolTip(
            "Talk to the model this run trained, in the Chat tab"
            if can_chat
            else "This run saved no trained model (it failed or was stopped before its first save)"
        )

    def _chat_with_selected(self) -> None:
        row = self._selected()
        if row is not None and self.runs[row].has_model:
            self.chat = True
            self._choose(row)

    def _evaluate_selected(self) -> None:
        """The evaluation dialog on the selected run, over this one (the run history stays open)."""
        row = self._selected()
        if row is not None and self.runs[row].has_model:
            self.eval_dialog = EvalDialog(str(self.runs[row].path), self)
            self.eval_dialog.open()

    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self._choose(rows[0].row())

    def _choose(self, row: int) -> None:
        self.chosen = str(self.runs[row].path)
        self.accept()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a run folder", self._runs_folder)
        if folder:
            self.chosen = folder
            self.accept()

    def text_of(self, row: int, column: str) -> str:
        """A cell's text (tests read the table through it)."""
        item = self.table.item(row, COLUMNS.index(column))
        return item.text() if item is not None else ""
