"""The Chat tab's model picker: the model just trained, the past runs of the runs folder, a GGUF file,
or the base GGUF with a LoRA adapter GGUF.

Each item's data is the chat side it answers on ("tuned", "run", "gguf", "adapter"); a past run's item
also carries its folder (`RUN_ROLE`), and its text names it (folder name, method, steps, date) so runs
trained before a restart can be told apart.  `set_runs` refills the run items and keeps the choice.
Knows nothing about engines or how runs are read.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

from tunesmith.desktop.logic.formatting import friendly_path
from tunesmith.desktop.logic.past_runs import PastRun

RUN_ROLE = Qt.ItemDataRole.UserRole + 1  # a past run's folder, as text
TUNED_TEXT = "The model you just trained"


class ChatModelPicker(QComboBox):
    """A QComboBox whose currentData() is the chat side of the chosen model."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs: dict[str, PastRun] = {}
        self.addItem(TUNED_TEXT, "tuned")
        self.addItem("A GGUF file (llama.cpp)", "gguf")
        self.addItem("Base GGUF + LoRA adapter GGUF (llama.cpp)", "adapter")
        self.setToolTip(
            "Which model answers: the one you just trained, one trained earlier (the past runs, newest\n"
            "first: folder, method, steps, date), or an exported GGUF file (a whole model, or a LoRA\n"
            "adapter to apply to the base model)."
        )
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(32)

    def side(self) -> str | None:
        return self.currentData()

    def run(self) -> PastRun | None:
        """The past run chosen, when one is."""
        return self.runs.get(self.currentData(RUN_ROLE) or "") if self.side() == "run" else None

    def select_side(self, side: str) -> None:
        self.setCurrentIndex(self.findData(side))

    def select_run(self, path: str) -> bool:
        """Choose the past run in folder `path`; False when it is not listed."""
        index = self.findData(str(path), RUN_ROLE)
        if index >= 0:
            self.setCurrentIndex(index)
        return index >= 0

    def set_runs(self, runs: list[PastRun], folder: str) -> None:
        """List `runs` (newest first) after the trained model; the chosen item stays chosen when it still
        exists (no change signal then), else the first item is chosen."""
        chosen_side, chosen_run = self.side(), self.currentData(RUN_ROLE)
        self.blockSignals(True)
        try:
            for index in reversed(range(self.count())):
                if self.itemData(index) in ("run", None):
                    self.removeItem(index)
            self.runs = {str(run.path): run for run in runs}
            row = 1
            for run in runs:
                self.insertItem(row, f"Past run: {run.label()}", "run")
                self.setItemData(row, str(run.path), RUN_ROLE)
                self.setItemData(row, str(run.path), Qt.ItemDataRole.ToolTipRole)
                row += 1
            if not runs:  # say where runs were looked for, as an item that cannot be chosen
                self.insertItem(row, f"Past runs: none yet in {friendly_path(folder)}", None)
                model = self.model()  # a QComboBox's own model is a QStandardItemModel
                item = model.item(row) if isinstance(model, QStandardItemModel) else None
                if item is not None:
                    item.setEnabled(False)
            index = (
                self.findData(chosen_run, RUN_ROLE) if chosen_side == "run" else self.findData(chosen_side)
            )
        finally:
            self.blockSignals(False)
        # The list opens wide enough for the longest name; the closed box keeps its modest width.
        self.view().setMinimumWidth(self.view().sizeHintForColumn(0) + 32)
        self.setCurrentIndex(index if index >= 0 and self.itemData(index) is not None else 0)
