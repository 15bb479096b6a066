"""The Past runs dialog: every run of the runs folder with its date, method, dataset, steps and how it
ended; Show (or a double-click) draws the chosen run in the Train tab, where a stopped one can be
resumed.  "Another folder…" opens any run folder.  It only picks a folder; the window shows it.
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

from tunesmith.desktop.logic.formatting import friendly_path
from tunesmith.desktop.logic.past_runs import PastRun, list_past_runs

COLUMNS = ("Started", "Run", "Method", "Dataset", "Steps", "How it ended")


class PastRunsDialog(QDialog):
    """After exec(): `chosen` is the run folder to show, or "" when none was chosen."""

    def __init__(self, runs_folder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Past runs")
        self.resize(860, 360)
        self.chosen = ""
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
        if self.runs:
            self.table.selectRow(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.show_button = buttons.addButton("Show", QDialogButtonBox.ButtonRole.AcceptRole)
        self.show_button.setEnabled(bool(self.runs))
        other = buttons.addButton("Another folder…", QDialogButtonBox.ButtonRole.ActionRole)
        other.clicked.connect(self._choose_folder)
        buttons.accepted.connect(self._show_selected)
        buttons.rejected.connect(self.reject)
        self.table.cellDoubleClicked.connect(lambda row, _column: self._choose(row))
        layout = QVBoxLayout(self)
        layout.addWidget(where)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self._runs_folder = runs_folder

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
