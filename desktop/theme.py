"""Look and feel: the app icon, the small stylesheet, and plot colours that follow the system palette.

The app uses Qt's Fusion style, which follows the system's light or dark colour scheme by itself; plots
are restyled from the palette whenever it changes.  Nothing here knows about training.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

ORGANIZATION = "Tunesmith"
APPLICATION = "Tunesmith"

# Curve colours readable on both light and dark backgrounds.
COLORS = {
    "train": "#1f77b4",
    "eval": "#ff7f0e",
    "lr": "#2ca02c",
    "allocated": "#9467bd",
    "reserved": "#d62728",
    "total": "#7f7f7f",
    "cut": "#d62728",
    "bars": "#1f77b4",
}


def resources_dir() -> Path:
    """The installed resources folder (icons, styles, samples)."""
    import tunesmith.resources

    return Path(tunesmith.resources.__file__).parent


def app_icon() -> QIcon:
    """The application icon (empty if the file is missing)."""
    return QIcon(str(resources_dir() / "icons" / "tunesmith.svg"))


def icon(name: str) -> QIcon:
    """An icon from resources/icons by file stem."""
    return QIcon(str(resources_dir() / "icons" / f"{name}.svg"))


def load_stylesheet() -> str:
    """The app's stylesheet text (banners and a few accents; colours come from the palette)."""
    path = resources_dir() / "styles" / "app.qss"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def setup_application(app: QApplication) -> None:
    """Style, icon and stylesheet for the whole app."""
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    app.setStyleSheet(load_stylesheet())


def is_dark(palette: QPalette) -> bool:
    """True when the window background is darker than its text."""
    return (
        palette.color(QPalette.ColorRole.Window).lightness()
        < palette.color(QPalette.ColorRole.WindowText).lightness()
    )


def style_plot(plot_widget, palette: QPalette) -> None:
    """Give a pyqtgraph PlotWidget the palette's background and text colours."""
    import pyqtgraph as pg

    background = palette.color(QPalette.ColorRole.Base)
    foreground = palette.color(QPalette.ColorRole.Text)
    plot_widget.setBackground(background)
    item = plot_widget.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(foreground))
        axis.setTextPen(pg.mkPen(foreground))
    item.titleLabel.setText(item.titleLabel.text, color=QColor(foreground).name())
