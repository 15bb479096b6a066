"""The offer, at start-up, to go on with a run that stopped before its end: "The run … was stopped at
step 62 of 200." with Resume and Discard.

It only shows the offer and says which button was pressed (`sig_resume(run)`, `sig_discard(run)`);
the main window adopts the run into the training session or remembers that it was turned down.
Discard never deletes anything: the run's folder, checkpoints and adapter stay on disk.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from tunesmith.desktop.logic.formatting import friendly_path
from tunesmith.desktop.logic.unfinished_runs import ResumableRun


class ResumeOffer(QFrame):
    """Signals: sig_resume(ResumableRun), sig_discard(ResumableRun)."""

    sig_resume = Signal(object)
    sig_discard = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")  # the app's banner frame style, in its "info" colours
        self.setProperty("level", "info")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.run: ResumableRun | None = None
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("primary")
        self.resume_button.setToolTip("Continue the run from its last checkpoint, in the Train tab")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip(
            "Stop offering this run. Nothing is deleted: its folder stays where it is, and you can still\n"
            "resume it later from Run ▸ Past runs."
        )
        row = QHBoxLayout(self)
        row.addWidget(self.label, 1)
        row.addWidget(self.resume_button)
        row.addWidget(self.discard_button)
        self.resume_button.clicked.connect(lambda: self._answer(self.sig_resume))
        self.discard_button.clicked.connect(lambda: self._answer(self.sig_discard))
        self.hide()

    def offer(self, run: ResumableRun) -> None:
        """Show the offer for `run`."""
        self.run = run
        self.label.setText(
            f"{run.offer()} Its checkpoint is kept in {friendly_path(run.path)}: resume it where it stopped?"
        )
        self.show()

    def _answer(self, signal) -> None:
        run, self.run = self.run, None
        self.hide()
        if run is not None:
            signal.emit(run)
