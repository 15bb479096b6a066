"""A pyqtgraph plot for live curves that stays smooth over long runs, and reads like a person writes.

Each curve is created once; `append` only adds numbers to growing buffers and marks the curve dirty;
a throttled QTimer (default 4 Hz) pushes dirty buffers to the curve with one `setData`.  Peak
downsampling and clip-to-view keep drawing cheap when a run has tens of thousands of points.

For people rather than plotters: the y axis writes its numbers whole ("2e-4", "0.5"; pyqtgraph's own
axis would write "200" under a "(x1e-06)" label); a curve enters the legend only once it has a point;
hovering shows the values at the nearest step.  The plot knows nothing about training: it takes
(x, y) numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from tunesmith.desktop.logic.formatting import format_plain_number
from tunesmith.desktop.theme import style_plot

NumberFormat = Callable[[float], str]
FAINT_ALPHA = 80  # of 255: the raw curve behind its smoothed one, visible but not competing


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


class PlainAxis(pg.AxisItem):
    """An axis whose tick labels are the numbers themselves, never scaled by a shared SI factor."""

    def __init__(self, orientation: str, number_format: NumberFormat = format_plain_number) -> None:
        super().__init__(orientation)
        self.enableAutoSIPrefix(False)
        self.number_format = number_format

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [self.number_format(v * scale) for v in values]


class LivePlot(QWidget):
    """A titled plot with named curves fed point by point.  `number_format` writes the y values (axis
    and hover), `unit` follows them in the hover text."""

    def __init__(
        self,
        title: str,
        y_label: str,
        x_label: str = "step",
        refresh_ms: int = 250,
        parent: QWidget | None = None,
        number_format: NumberFormat = format_plain_number,
        unit: str = "",
    ):
        super().__init__(parent)
        self.number_format = number_format
        self.unit = unit
        self.x_label = x_label
        self.plot_widget = pg.PlotWidget(
            title=title, axisItems={"left": PlainAxis("left", number_format), "bottom": PlainAxis("bottom")}
        )
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setLabel("left", y_label)
        self.plot_item.setLabel("bottom", x_label)
        self.plot_item.showGrid(x=True, y=True, alpha=0.2)
        self.plot_item.setDownsampling(auto=True, mode="peak")
        self.plot_item.setClipToView(True)
        self.legend = self.plot_item.addLegend(offset=(-10, 10))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._labels: dict[str, str] = {}
        self._in_legend: set[str] = set()
        self._buffers: dict[str, _Buffer] = {}
        self._dirty: set[str] = set()
        self._lines: dict[str, pg.InfiniteLine] = {}
        self.hover_text = ""  # what the hover label says now ("" while the pointer is away)
        self._cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((128, 128, 128), width=1))
        self._hover = pg.TextItem(anchor=(0, 1))
        for item in (self._cursor, self._hover):
            item.hide()
            self.plot_item.addItem(item, ignoreBounds=True)
        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.flush)
        self.timer.start()
        style_plot(self.plot_widget, self.palette())

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.PaletteChange:
            style_plot(self.plot_widget, self.palette())
        super().changeEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.hide_values()
        super().leaveEvent(event)

    def add_curve(
        self,
        name: str,
        color: str,
        dashed: bool = False,
        symbol: str | None = None,
        label: str | None = None,
        faint: bool = False,
    ) -> None:
        """Create the curve once; later points go through `append`.  `label`: the legend's words (default
        `name`, the key `append` takes); it enters the legend with its first point.  `faint`: thin and
        pale, for the raw numbers behind a smoothed curve."""
        pen_color = QColor(color)
        if faint:
            pen_color.setAlpha(FAINT_ALPHA)
        pen = pg.mkPen(color=pen_color, width=1 if faint else 2, style=_dash(dashed))
        curve = self.plot_item.plot(
            [], [], pen=pen, symbol=symbol, symbolBrush=color, symbolSize=6, symbolPen=None
        )
        self._curves[name] = curve
        self._labels[name] = label or name
        self._buffers[name] = _Buffer()

    def set_label(self, name: str, label: str) -> None:
        """Change a curve's words in the legend (and in the hover text)."""
        self._labels[name] = label
        legend_label = self.legend.getLabel(self._curves[name])
        if legend_label is not None:
            legend_label.setText(label)

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
            line.label.setFormat(label)

    def set_y_range(self, low: float, high: float) -> None:
        """Fix the y axis to [low, high] (e.g. 0 to the GPU's total memory), no auto-range."""
        self.plot_item.setYRange(low, high, padding=0.02)

    def set_title(self, title: str) -> None:
        """Change the title (in the palette's text colour, as `style_plot` draws it)."""
        color = self.palette().color(QPalette.ColorRole.Text)
        self.plot_item.setTitle(title, color=color.name())

    def title(self) -> str:
        """The title as shown."""
        return self.plot_item.titleLabel.text

    def flush(self) -> None:
        """Push the points added since the last tick to their curves; new curves enter the legend."""
        for name in self._curves:  # creation order: the legend's order
            if name not in self._dirty:
                continue
            buf = self._buffers[name]
            self._curves[name].setData(buf.x[: buf.size], buf.y[: buf.size])
            if name not in self._in_legend:
                self.legend.addItem(self._curves[name], self._labels[name])
                self._in_legend.add(name)
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

    def legend_labels(self) -> list[str]:
        """The legend's entries as shown (only curves that have points)."""
        return [label.text for _item, label in self.legend.items]

    def drawn_points(self, name: str) -> int:
        """How many points the curve on screen holds (after the last flush)."""
        x, _y = self._curves[name].getOriginalDataset()
        return 0 if x is None else len(x)

    def show_values_at(self, x: float) -> str:
        """Show (beside a vertical cursor) each curve's value at the logged step nearest to `x`; returns
        the text, '' when there are no points."""
        nearest = self._nearest_x(x)
        if nearest is None:
            self.hide_values()
            return ""
        parts = [f"{self.x_label} {format_plain_number(nearest)}"]
        y_top = None
        for name, buf in self._buffers.items():
            hits = np.flatnonzero(buf.x[: buf.size] == nearest)
            if hits.size:
                y = float(buf.y[hits[-1]])
                y_top = y if y_top is None else max(y_top, y)
                parts.append(f"{self._labels[name]} {self.number_format(y)}{self.unit}")
        self.hover_text = " · ".join(parts)
        # One line per curve: narrow enough to stay inside a small plot.
        self._hover.setText("\n".join(parts), color=self.palette().color(QPalette.ColorRole.Text))
        (x_low, x_high), (_y_low, y_high) = self.plot_item.viewRange()
        # Keep the label inside the view: to the left of the cursor on the right half.
        self._hover.setAnchor((1, 0) if nearest > (x_low + x_high) / 2 else (0, 0))
        self._hover.setPos(nearest, y_high)
        self._cursor.setValue(nearest)
        self._cursor.show()
        self._hover.show()
        return self.hover_text

    def hide_values(self) -> None:
        """Hide the hover label and cursor."""
        self.hover_text = ""
        self._cursor.hide()
        self._hover.hide()

    def clear(self) -> None:
        """Drop every point (curves stay, out of the legend until their next point)."""
        for name in self._buffers:
            self._buffers[name] = _Buffer()
            self._curves[name].setData([], [])
            if name in self._in_legend:
                self.legend.removeItem(self._curves[name])
        self._in_legend.clear()
        self._dirty.clear()
        self.hide_values()

    def clear_curve(self, name: str) -> None:
        """Drop one curve's points (it leaves the legend until its next point)."""
        self._buffers[name] = _Buffer()
        self._curves[name].setData([], [])
        self._dirty.discard(name)
        if name in self._in_legend:
            self.legend.removeItem(self._curves[name])
            self._in_legend.discard(name)

    def _nearest_x(self, x: float) -> float | None:
        best: float | None = None
        for buf in self._buffers.values():
            if buf.size:
                xs = buf.x[: buf.size]
                candidate = float(xs[int(np.argmin(np.abs(xs - x)))])
                if best is None or abs(candidate - x) < abs(best - x):
                    best = candidate
        return best

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        view = self.plot_item.vb
        if not view.sceneBoundingRect().contains(scene_pos):
            self.hide_values()
            return
        self.show_values_at(view.mapSceneToView(scene_pos).x())


def _dash(dashed: bool) -> Qt.PenStyle:
    return Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
