"""A pyqtgraph plot for live curves that stays smooth over long runs.

Each curve is created once; `append` only adds numbers to growing buffers and marks the curve dirty;
a throttled QTimer (default 4 Hz) pushes dirty buffers to the curve with one `setData`.  Peak
downsampling and clip-to-view keep drawing cheap when a run has tens of thousands of points.  The plot
knows nothing about training: it takes (x, y) numbers.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from tunesmith.desktop.theme import style_plot


class _Buffer:
    """Amortised-growth float buffer for one curve (doubling, so appends are O(1))."""

    def __init__(self) -> None:
        self.x = np.empty(256)
        self.y = np.empty(256)
        self.size = 0

    def append(self, x: float, y: float) -> None:
        if self.size == len(self.x):
            self.x = np.resize(self.x, 2 * self.size)
            self.y = np.resize(self.y, 2 * self.size)
        self.x[self.size] = x
        self.y[self.size] = y
        self.size += 1


class LivePlot(QWidget):
    """A titled plot with named curves fed point by point."""

    def __init__(self, title: str, y_label: str, x_label: str = "step", refresh_ms: int = 250, parent=None):
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget(title=title)
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setLabel("left", y_label)
        self.plot_item.setLabel("bottom", x_label)
        self.plot_item.showGrid(x=True, y=True, alpha=0.2)
        self.plot_item.setDownsampling(auto=True, mode="peak")
        self.plot_item.setClipToView(True)
        self.plot_item.addLegend(offset=(-10, 10))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._buffers: dict[str, _Buffer] = {}
        self._dirty: set[str] = set()
        self._lines: dict[str, pg.InfiniteLine] = {}
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.flush)
        self.timer.start()
        style_plot(self.plot_widget, self.palette())

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.PaletteChange:
            style_plot(self.plot_widget, self.palette())
        super().changeEvent(event)

    def add_curve(
        self, name: str, color: str, dashed: bool = False, symbol: str | None = None, label: str | None = None
    ) -> None:
        """Create the curve once; later points go through `append`.  `label`: the legend's words (default
        `name`, the key `append` takes)."""
        pen = pg.mkPen(color=color, width=2, style=_dash(dashed))
        curve = self.plot_item.plot(
            [],
            [],
            pen=pen,
            name=label or name,
            symbol=symbol,
            symbolBrush=color,
            symbolSize=6,
            symbolPen=None,
        )
        self._curves[name] = curve
        self._buffers[name] = _Buffer()

    def append(self, name: str, x: float, y: float | None) -> None:
        """Add one point to a curve (None or NaN values are skipped); drawn on the next tick."""
        if y is None or not np.isfinite(y):
            return
        self._buffers[name].append(float(x), float(y))
        self._dirty.add(name)

    def set_level(self, name: str, value: float | None, color: str, label: str) -> None:
        """A horizontal reference line (e.g. the GPU's total memory); None hides it."""
        line = self._lines.get(name)
        if line is None:
            line = pg.InfiniteLine(
                angle=0,
                movable=False,
                pen=pg.mkPen(color, width=1, style=_dash(True)),
                label=label,
                labelOpts={"position": 0.3, "color": color},
            )
            self.plot_item.addItem(line)
            self._lines[name] = line
        line.setVisible(value is not None)
        if value is not None:
            line.setValue(value)

    def set_y_range(self, low: float, high: float) -> None:
        """Fix the y axis to [low, high] (e.g. 0 to the GPU's total memory), no auto-range."""
        self.plot_item.setYRange(low, high, padding=0.02)

    def flush(self) -> None:
        """Push the points added since the last tick to their curves."""
        for name in self._dirty:
            buf = self._buffers[name]
            self._curves[name].setData(buf.x[: buf.size], buf.y[: buf.size])
        self._dirty.clear()

    def points(self, name: str) -> int:
        """How many points a curve holds."""
        return self._buffers[name].size

    def values(self, name: str) -> tuple[list[float], list[float]]:
        """A curve's points as (xs, ys), drawn or not yet."""
        buf = self._buffers[name]
        return buf.x[: buf.size].tolist(), buf.y[: buf.size].tolist()

    def curve_names(self) -> list[str]:
        """The curves, in the order they were created."""
        return list(self._curves)

    def drawn_points(self, name: str) -> int:
        """How many points the curve on screen holds (after the last flush)."""
        x, _y = self._curves[name].getOriginalDataset()
        return 0 if x is None else len(x)

    def clear(self) -> None:
        """Drop every point (curves stay)."""
        for name in self._buffers:
            self._buffers[name] = _Buffer()
            self._curves[name].setData([], [])
        self._dirty.clear()


def _dash(dashed: bool):
    from PySide6.QtCore import Qt

    return Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
