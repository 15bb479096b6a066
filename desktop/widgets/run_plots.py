"""The Train tab's live plots: loss (train and eval), learning rate, memory against the total, and the
method's own numbers (DPO/ORPO rewards, GRPO rewards) in a row that appears only for those methods.

Made to be read by someone who has never seen a loss curve: above the plots, one line says what the
loss (for GRPO: the reward) is doing, in words (`logic.curve_reading`); the loss is drawn smoothed,
with each step's raw loss faint behind it; the learning rate's axis writes "2e-4", not "200" under
"x1e-06"; the memory plot's title says "2.1 of 23.5 GiB".  Hovering over any plot shows the values at that step.

The memory plot draws each step event's *peak* allocated memory (the highest since the previous event,
what the run needs at its height) on an axis from 0 to the total, so the distance to an out-of-memory
is what the user sees.  On a GPU the peak *reserved* by PyTorch's allocator is drawn too; on the CPU
there is one number (the process's RAM), so one line.  Run folders from before the peaks read their
between-steps numbers in the same place.

Fed with StepMetrics / EvalMetrics dicts; curves are created once and redrawn by each LivePlot's
throttled timer.  Knows nothing about the engine beyond those dict keys.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from tunesmith.core.events import EvalMetrics, StepMetrics
from tunesmith.desktop.logic.curve_reading import Smoother, read_loss, read_reward
from tunesmith.desktop.logic.formatting import memory_line
from tunesmith.desktop.theme import COLORS
from tunesmith.desktop.widgets.live_plot import LivePlot
from tunesmith.desktop.widgets.method_plots import MethodPlots

# Short titles: the number follows them ("GPU memory: 2.1 of 23.5 GiB") in half the plots' width.
GPU_TITLE = "GPU memory"
CPU_TITLE = "RAM (this process)"


class RunPlots(QWidget):
    """A line reading the loss, three live plots in a splitter, and the method's plots below them when
    the run has any."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.reading = QLabel()
        self.reading.setObjectName("lossReading")
        self.reading.setWordWrap(True)
        self.reading.setToolTip("What the loss curve is doing, in words (it updates as the run goes).")
        self.reading.hide()
        self.loss = LivePlot("Loss (lower is better)", "loss")
        self.loss.add_curve("train", COLORS["train"], label="train (each step)", faint=True)
        self.loss.add_curve("smoothed", COLORS["train"], label="train (smoothed)")
        self.loss.add_curve("eval", COLORS["eval"], symbol="o", label="evaluation")
        self.lr = LivePlot("Learning rate", "learning rate")
        self.lr.add_curve("learning rate", COLORS["lr"])
        self.memory = LivePlot(GPU_TITLE, "GiB", unit=" GiB")
        self.memory.add_curve("allocated", COLORS["allocated"], label="peak allocated")
        self.memory.add_curve("reserved", COLORS["reserved"], dashed=True, label="peak reserved")
        self._on_gpu: bool | None = None  # None: not known yet (both memory lines are drawn)
        self._memory_total: float | None = None
        self._memory_now: float | None = None  # the last step's peak, GiB
        self._lr_highest = 0.0
        self._smoother = Smoother()
        self._reading_due = False
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.lr)
        lower.addWidget(self.memory)
        for plot, height in ((self.loss, 100), (self.lr, 100), (self.memory, 100)):
            plot.setMinimumHeight(height)  # never a sliver, even with a banner on a 700-pixel screen
        lower.setChildrenCollapsible(False)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setObjectName("plotsSplitter")
        self.splitter.addWidget(self.loss)
        self.splitter.addWidget(lower)
        self.method = MethodPlots()
        self.splitter.addWidget(self.method)
        self.splitter.setSizes([300, 200, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.reading)
        layout.addWidget(self.splitter)
        self._reading_timer = QTimer(self)  # the reading reads the whole curve: once a second is enough
        self._reading_timer.setInterval(1000)
        self._reading_timer.timeout.connect(self._update_reading)
        self._reading_timer.start()

    def add_step(self, step: StepMetrics) -> None:
        """Append one step event's numbers (memory: the peaks since the step before)."""
        x = step.step
        self.loss.append("train", x, step.loss)
        if step.loss == step.loss:  # not NaN: a NaN would poison every smoothed value after it
            self.loss.append("smoothed", x, self._smoother.add(step.loss))
        self.lr.append("learning rate", x, step.learning_rate)
        if step.learning_rate > self._lr_highest:  # from 0: a constant rate is a level line, not noise
            self._lr_highest = step.learning_rate
            self.lr.set_y_range(0.0, step.learning_rate * 1.1)
        self.memory.append("allocated", x, step.peak_allocated_gb)
        if self._on_gpu is not False:
            self.memory.append("reserved", x, step.peak_reserved_gb)
        self._show_memory(step.peak_allocated_gb, step.memory_total_gb)
        was_hidden = self.method.isHidden()
        self.method.add_step(step)
        if was_hidden and not self.method.isHidden():  # the method row just appeared: share the height
            third = max(sum(self.splitter.sizes()) // 3, 120)
            self.splitter.setSizes([third, third, third])
        self._reading_due = True

    def add_eval(self, evaluation: EvalMetrics) -> None:
        """Append one evaluation event's loss (and its method numbers)."""
        self.loss.append("eval", evaluation.step, evaluation.eval_loss)
        self.method.add_eval(evaluation)
        self._reading_due = True

    def set_memory_label(self, on_gpu: bool) -> None:
        """Title the memory plot 'GPU memory' or 'RAM (this process)'; on the CPU one line is drawn (the
        process's RAM has no 'reserved' beside it)."""
        self._on_gpu = on_gpu
        self.memory.set_label("allocated", "peak allocated" if on_gpu else "peak RAM used")
        if not on_gpu:
            self.memory.clear_curve("reserved")
        self._retitle_memory()

    def clear(self) -> None:
        """Start over (a new run): every curve emptied, the method plots removed."""
        for plot in (self.loss, self.lr, self.memory):
            plot.clear()
        self._memory_total = None
        self._memory_now = None
        self._lr_highest = 0.0
        self._smoother = Smoother()
        self.memory.set_level("total", None, COLORS["total"], "")
        self._retitle_memory()
        self.method.clear()
        self.reading.clear()
        self.reading.hide()
        self._reading_due = False

    def flush(self) -> None:
        """Draw pending points and the reading now (tests and screenshots)."""
        for plot in (self.loss, self.lr, self.memory):
            plot.flush()
        self.method.flush()
        self._update_reading()

    def _show_memory(self, used: float, total: float) -> None:
        if used == used and used > 0:  # not NaN
            self._memory_now = used
        if total and total != self._memory_total:
            self._memory_total = total
            self.memory.set_level("total", total, COLORS["total"], f"total {total:.1f} GiB")
            self.memory.set_y_range(0.0, total)
        self._retitle_memory()

    def _retitle_memory(self) -> None:
        title = GPU_TITLE if self._on_gpu is not False else CPU_TITLE
        if self._memory_now is not None:
            title += f": {memory_line(self._memory_now, self._memory_total)}"
        self.memory.set_title(title)

    def _update_reading(self) -> None:
        if not self._reading_due:
            return
        self._reading_due = False
        reward = self.method.panels.get("reward")
        if (
            reward is not None and "mean reward" in reward.curve_names()
        ):  # GRPO: the loss hovers around 0 whatever the answers; the reward tells
            text = read_reward(*reward.values("mean reward"))
        else:
            text = read_loss(*self.loss.values("train"), *self.loss.values("eval"))
        self.reading.setText(text)
        self.reading.show()
