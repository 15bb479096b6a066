"""The Train tab's live plots: loss (train and eval), learning rate, memory against the total, and the
method's own numbers (DPO/ORPO rewards, GRPO rewards) in a row that appears only for those methods.

The memory plot draws each step event's *peak* allocated and reserved memory (the highest since the
previous event, what the run needs at its height) on an axis from 0 to the card's total, so the
distance to an out-of-memory is what the user sees.  Run folders from before the peaks read their
between-steps numbers in the same place.

Fed with StepMetrics / EvalMetrics dicts; curves are created once and redrawn by each LivePlot's
throttled timer.  Knows nothing about the engine beyond those dict keys.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from tunesmith.core.events import EvalMetrics, StepMetrics
from tunesmith.desktop.theme import COLORS
from tunesmith.desktop.widgets.live_plot import LivePlot
from tunesmith.desktop.widgets.method_plots import MethodPlots


class RunPlots(QWidget):
    """Three live plots in a splitter, and the method's plots below them when the run has any."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.loss = LivePlot("Loss", "loss")
        self.loss.add_curve("train", COLORS["train"])
        self.loss.add_curve("eval", COLORS["eval"], symbol="o")
        self.lr = LivePlot("Learning rate", "lr")
        self.lr.add_curve("learning rate", COLORS["lr"])
        self.memory = LivePlot("Memory", "GiB")
        self.memory.add_curve("allocated", COLORS["allocated"], label="peak allocated")
        self.memory.add_curve("reserved", COLORS["reserved"], dashed=True, label="peak reserved")
        self._memory_total: float | None = None
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.lr)
        lower.addWidget(self.memory)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("plotsSplitter")
        self.splitter.addWidget(self.loss)
        self.splitter.addWidget(lower)
        self.method = MethodPlots()
        self.splitter.addWidget(self.method)
        self.splitter.setSizes([300, 200, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def add_step(self, step: StepMetrics) -> None:
        """Append one step event's numbers (memory: the peaks since the step before)."""
        x = step.step
        self.loss.append("train", x, step.loss)
        self.lr.append("learning rate", x, step.learning_rate)
        self.memory.append("allocated", x, step.peak_allocated_gb)
        self.memory.append("reserved", x, step.peak_reserved_gb)
        total = step.memory_total_gb
        if total and total != self._memory_total:
            self._memory_total = total
            self.memory.set_level("total", total, COLORS["total"], f"total {total:.1f} GiB")
            self.memory.set_y_range(0.0, total)
        was_hidden = self.method.isHidden()
        self.method.add_step(step)
        if was_hidden and not self.method.isHidden():  # the method row just appeared: share the height
            third = max(sum(self.splitter.sizes()) // 3, 120)
            self.splitter.setSizes([third, third, third])

    def add_eval(self, evaluation: EvalMetrics) -> None:
        """Append one evaluation event's loss (and its method numbers)."""
        self.loss.append("eval", evaluation.step, evaluation.eval_loss)
        self.method.add_eval(evaluation)

    def set_memory_label(self, on_gpu: bool) -> None:
        """Title the memory plot 'GPU memory' or 'RAM (this process)'."""
        self.memory.plot_item.setTitle("GPU memory (VRAM)" if on_gpu else "RAM used by this process")

    def clear(self) -> None:
        """Start over (a new run): every curve emptied, the method plots removed."""
        for plot in (self.loss, self.lr, self.memory):
            plot.clear()
        self._memory_total = None
        self.method.clear()

    def flush(self) -> None:
        """Draw pending points now (tests and screenshots)."""
        for plot in (self.loss, self.lr, self.memory):
            plot.flush()
        self.method.flush()
