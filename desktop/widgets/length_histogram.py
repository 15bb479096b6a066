"""A token-length histogram with the max-length cut drawn as a vertical line.

Takes a list of lengths and the cut; knows nothing about datasets or tokenizers.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from tunesmith.desktop.logic.dataset_preview import histogram
from tunesmith.desktop.theme import COLORS, style_plot


class LengthHistogram(QWidget):
    """Bars of how many examples have each token length; a red line at max length."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget(title="Tokens per example")
        item = self.plot_widget.getPlotItem()
        item.setLabel("bottom", "tokens")
        item.setLabel("left", "examples")
        item.showGrid(x=True, y=True, alpha=0.2)
        self.bars = pg.PlotDataItem(
            [0, 1],
            [0],
            stepMode="center",
            fillLevel=0,
            brush=pg.mkBrush(COLORS["bars"] + "a0"),
            pen=pg.mkPen(COLORS["bars"]),
        )
        item.addItem(self.bars)
        self.cut_line = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen(COLORS["cut"], width=2),
            label="max length",
            labelOpts={"position": 0.9, "color": COLORS["cut"]},
        )
        item.addItem(self.cut_line)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self.lengths: list[int] = []
        self.over_cut = 0
        style_plot(self.plot_widget, self.palette())

    def set_lengths(self, lengths: list[int], max_length: int) -> None:
        """Draw the histogram of `lengths` and the cut at `max_length`."""
        self.lengths = list(lengths)
        edges, counts = histogram(self.lengths)
        self.bars.setData(edges, counts)
        self.set_cut(max_length)

    def set_cut(self, max_length: int) -> None:
        """Move the max-length line (and count the examples it cuts)."""
        self.cut_line.setValue(max_length)
        self.over_cut = sum(1 for n in self.lengths if n > max_length)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.PaletteChange:
            style_plot(self.plot_widget, self.palette())
        super().changeEvent(event)
