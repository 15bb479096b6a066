"""The Train tab's method plots: DPO/ORPO rewards and accuracy, GRPO rewards, answer length and KL.

Hidden until a step brings method numbers (an SFT run never shows it).  Panels and curves are created
when their first number arrives (each once, as `method_metrics` names them), then fed like the other
live plots: appended, redrawn by each LivePlot's throttled timer, downsampled.  `clear()` removes the
panels, so a new run of another method starts with its own.  Evaluations add dotted "(eval)" curves.
Knows only StepMetrics / EvalMetrics dicts.
"""

from __future__ import annotations

from itertools import cycle

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from tunesmith.core.events import EvalMetrics, StepMetrics
from tunesmith.desktop.logic.method_metrics import EVAL_SUFFIX, PANELS, eval_points, method_points
from tunesmith.desktop.widgets.live_plot import LivePlot

# Fixed colours for the curves every run of a method has; reward functions take the next free one.
CURVE_COLORS = {
    "chosen": "#2ca02c",
    "rejected": "#d62728",
    "margin": "#1f77b4",
    "accuracy": "#9467bd",
    "mean reward": "#1f77b4",
    "mean length": "#8c564b",
    "KL": "#7f7f7f",
}
EXTRA_COLORS = ("#ff7f0e", "#17becf", "#e377c2", "#bcbd22", "#2ca02c", "#d62728", "#9467bd")


class MethodPlots(QWidget):
    """Panels keyed as in `method_metrics.PANELS`, side by side."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.panels: dict[str, LivePlot] = {}
        self._curves: list[tuple[str, str]] = []  # (panel, curve), in creation order
        self._extra_colors = cycle(EXTRA_COLORS)
        self._function_colors: dict[str, str] = {}
        self.hide()

    def add_step(self, step: StepMetrics) -> None:
        """Append the method numbers of one step event (nothing happens for SFT steps)."""
        for point in method_points(step.extra):
            self._curve(point.panel, point.curve).append(point.curve, step.step, point.value)

    def add_eval(self, evaluation: EvalMetrics) -> None:
        """Append the method numbers of one evaluation event, as dotted "(eval)" curves."""
        for point in eval_points(evaluation.extra):
            self._curve(point.panel, point.curve).append(point.curve, evaluation.step, point.value)

    def curve_names(self, panel: str) -> list[str]:
        """The curves a panel shows, in creation order (for tests and the legend's order)."""
        return [curve for key, curve in self._curves if key == panel]

    def flush(self) -> None:
        """Draw pending points now."""
        for plot in self.panels.values():
            plot.flush()

    def clear(self) -> None:
        """Remove every panel (the next run may be another method) and hide."""
        for plot in self.panels.values():
            plot.timer.stop()
            plot.setParent(None)
            plot.deleteLater()
        self.panels.clear()
        self._curves.clear()
        self._extra_colors = cycle(EXTRA_COLORS)
        self._function_colors.clear()
        self.hide()

    def _curve(self, panel: str, curve: str) -> LivePlot:
        plot = self.panels.get(panel)
        if plot is None:
            spec = PANELS[panel]
            plot = LivePlot(spec.title, spec.y_label)
            plot.setObjectName(f"methodPlot_{panel}")
            self.panels[panel] = plot
            self.splitter.addWidget(plot)
            self.show()
        if (panel, curve) not in self._curves:
            evaluation = curve.endswith(EVAL_SUFFIX)
            base = curve.removesuffix(EVAL_SUFFIX)
            color = CURVE_COLORS.get(base) or self._function_colors.get(base) or next(self._extra_colors)
            self._function_colors[base] = color  # a reward function's eval curve takes its colour
            dashed = panel == "reward" and base != "mean reward"
            plot.add_curve(curve, color, dashed=dashed, symbol="o" if evaluation else None)
            self._curves.append((panel, curve))
        return plot
