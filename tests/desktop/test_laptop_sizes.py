"""Every control whole and usable on laptop screens (issue 21.8), measured on the real window.

Each tab is laid out at 1366x768 and 1024x700 with a banner showing and the Advanced settings open; no
visible widget may be smaller than its minimum size hint, stick out of its parent, or (in a column that
does not scroll sideways) be wider than what shows it; the plots keep a readable height.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QHeaderView, QLabel, QScrollArea, QScrollBar, QWidget

from tunesmith.desktop.main_window import FIRST_SIZE, MINIMUM_SIZE

LAPTOPS = [QSize(1366, 768), QSize(1024, 700)]


def layout_problems(root: QWidget) -> list[str]:
    """What is cut off or squeezed among the visible widgets under `root`."""
    problems = []
    for widget in root.findChildren(QWidget):
        if not widget.isVisibleTo(root) or _qt_internal(widget):
            continue
        label = widget.text()[:40] if isinstance(widget, QLabel) else widget.toolTip()[:30]
        name = f"{type(widget).__name__} {widget.objectName() or label!r}"
        hint = widget.minimumSizeHint()  # what Qt's layouts keep, unless a minimum was set by hand
        hint = QSize(widget.minimumWidth() or hint.width(), widget.minimumHeight() or hint.height())
        if isinstance(widget, QLabel) and widget.wordWrap():  # wrapped text: as tall as its width needs
            hint.setHeight(widget.heightForWidth(widget.width()))
        if hint.isValid() and (widget.width() < hint.width() or widget.height() < hint.height()):
            problems.append(
                f"{name} is {widget.width()}x{widget.height()}, needs {hint.width()}x{hint.height()}"
            )
        parent = widget.parentWidget()
        scrolled = parent is None or parent.objectName() == "qt_scrollarea_viewport"
        if not scrolled and not parent.rect().contains(widget.geometry()):
            problems.append(f"{name} sticks out of its {type(parent).__name__}: {widget.geometry()}")
    for area in root.findChildren(QScrollArea):
        content = area.widget()
        sideways = area.horizontalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        shown = area.isVisibleTo(root) and content is not None and not sideways
        if shown and content.width() > area.viewport().width():
            problems.append(f"the content of {area.objectName()!r} is cut on the right")
    return problems


def _qt_internal(widget: QWidget) -> bool:
    """Parts Qt lays out itself inside its own widgets (spin box editors, headers, scroll bars)."""
    return widget.objectName().startswith("qt_") or isinstance(widget, QHeaderView | QScrollBar)


@pytest.mark.parametrize("size", LAPTOPS, ids=lambda s: f"{s.width()}x{s.height()}")
def test_every_tab_fits_a_laptop_screen_with_a_banner_showing(window, qtbot, size):
    window.banner.show_message("Could not read the dataset.", "Check line 3 of the file, then load it again.")
    window.train_tab.form.set_advanced_visible(True)
    window.resize(size)
    qtbot.waitUntil(lambda: window.size() == size, timeout=5000)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(50)  # let the layouts settle
        problems = layout_problems(window)
        assert problems == [], f"{window.tabs.tabText(index)}:\n" + "\n".join(problems)
    window.tabs.setCurrentWidget(window.train_tab)
    qtbot.wait(50)
    plots = window.train_tab.plots
    assert min(plots.loss.height(), plots.lr.height(), plots.memory.height()) >= 100


def test_the_window_has_a_minimum_and_starts_within_a_laptop_screen(window):
    assert window.minimumSize() == MINIMUM_SIZE
    assert MINIMUM_SIZE.width() <= 1024 and MINIMUM_SIZE.height() <= 700
    assert FIRST_SIZE.width() <= 1366 and FIRST_SIZE.height() <= 768 - 8  # a 768-pixel screen's task bar
    window.resize(QSize(600, 400))
    assert window.width() >= MINIMUM_SIZE.width() and window.height() >= MINIMUM_SIZE.height()
    assert not isinstance(window.train_tab.plots, QAbstractScrollArea)
