"""Where training runs are written, in words, with a button to choose another folder.

While idle it reads "New runs are saved in ~/Tunesmith/runs"; once a run has its folder, "This run is
saved in …/runs/20261206-101500".  "Change folder…" asks for a folder, refuses one that cannot be
written (saying so), and emits `sig_chosen(path)`; the owner stores the choice.  Knows nothing about
the engine or about how the choice is remembered.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from tunesmith.desktop.logic.formatting import friendly_path


class RunFolderRow(QWidget):
    """Signals: sig_chosen(str) — the user picked a writable folder for new runs."""

    sig_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folder = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        # Room for two lines from the start: a long path then wraps without taking the plots' height.
        self.label.setMinimumHeight(2 * self.label.fontMetrics().lineSpacing())
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.change_button = QPushButton("Change folder…")
        self.change_button.setToolTip("Choose the folder new training runs are saved in")
        self.change_button.setObjectName("output_dir")  # the setting it edits
        self.change_button.clicked.connect(self.choose)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.change_button)

    def show_folder(self, folder: str) -> None:
        """Say where new runs go (each run gets a new folder inside it)."""
        self.folder = str(folder)
        self.label.setText(f"New runs are saved in {friendly_path(folder)} (a new folder for each run).")
        self.label.setToolTip(self.folder)

    def show_run(self, run_dir: str) -> None:
        """Say where the current run writes its checkpoints, metrics and adapter."""
        self.label.setText(f"This run is saved in {friendly_path(run_dir)}.")
        self.label.setToolTip(str(run_dir))

    def choose(self) -> None:
        """Ask for a folder; a writable one is announced with sig_chosen."""
        start = self.folder if Path(self.folder).is_dir() else str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Choose where training runs are saved", start)
        if path:
            self.choose_path(path)

    def choose_path(self, path: str) -> bool:
        """Use `path` for new runs if it can be written (what the dialog's answer goes through)."""
        if not writable(Path(path)):
            self.label.setText(
                f"⚠ Tunesmith cannot write in {friendly_path(path)}: choose another folder. "
                f"New runs still go to {friendly_path(self.folder)}."
            )
            return False
        self.show_folder(path)
        self.sig_chosen.emit(str(path))
        return True


def writable(folder: Path) -> bool:
    """Whether runs can be created in `folder` (or in the nearest existing folder above it)."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
