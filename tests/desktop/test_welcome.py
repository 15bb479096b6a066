"""The first-start welcome (issue 7): what this machine can train, in plain words, checked for real.

On this CPU-only test machine the engine finds no NVIDIA GPU, so the welcome must say so and say what
the CPU can train.  The welcome is a panel, never a dialog: nothing here has to click anything away.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tunesmith.desktop.main_window import MainWindow
from tunesmith.desktop.persistence import make_settings, welcome_seen
from tunesmith.desktop.widgets.welcome_panel import CHECKING, summary_html
from tunesmith.desktop.workers.background import pending_jobs

TIMEOUT = 120_000  # ms: importing torch on a busy 2-core machine


@pytest.fixture
def open_window(qtbot):
    """Builds shown windows on the per-test settings; drains their background jobs at the end."""
    windows: list[MainWindow] = []

    def build() -> MainWindow:
        window = MainWindow(settings=make_settings())
        window.controller.config.data.path = "sample"
        window.show()
        windows.append(window)
        return window

    yield build
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=TIMEOUT)
    for window in windows:
        window.close()
        window.deleteLater()


def machine_text_arrived(window: MainWindow) -> bool:
    return window.controller.capabilities is not None and window.welcome.text() != CHECKING


def test_welcome_on_first_start_says_what_this_cpu_machine_can_train(open_window, qtbot):
    window = open_window()
    qtbot.waitUntil(lambda: window.welcome.isVisible(), timeout=5_000)  # at once, before torch loads
    qtbot.waitUntil(lambda: machine_text_arrived(window), timeout=TIMEOUT)
    text = window.welcome.text()
    assert text.startswith("No NVIDIA GPU found: Tunesmith will train on the CPU.")
    assert "You can fine-tune (LoRA, batch 1):" in text
    assert "SmolLM2-135M (the demo model): up to" in text
    assert "On the CPU (" in text and "slow for real work" in text
    assert "No NVIDIA GPU found" in window.welcome.body_label.toPlainText()  # what the user reads
    assert not window.controller.hardware.has_gpu  # the same facts the rest of the app uses

    qtbot.mouseClick(window.welcome.got_it_button, Qt.MouseButton.LeftButton)
    assert not window.welcome.isVisible()
    assert welcome_seen(window.settings)


def test_dismissed_welcome_stays_away_on_the_next_start_but_help_shows_it(open_window, qtbot):
    first = open_window()
    qtbot.waitUntil(lambda: first.welcome.isVisible(), timeout=5_000)
    first.welcome.got_it_button.click()
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=TIMEOUT)
    first.close()

    second = open_window()
    qtbot.waitUntil(lambda: second.controller.hardware is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=TIMEOUT)
    assert not second.welcome.isVisible()
    assert second.controller.capabilities is None  # not even checked: no work for a dismissed welcome

    assert "Welcome" in second.actions["welcome"].text()
    second.actions["welcome"].trigger()
    assert second.welcome.isVisible()
    qtbot.waitUntil(lambda: machine_text_arrived(second), timeout=TIMEOUT)
    assert "No NVIDIA GPU found" in second.welcome.text()


def test_welcome_is_off_where_nothing_may_wait_for_it(qtbot, settings):
    """A window not started (--startup-time) never checks; --screenshots turns the welcome off."""
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.autostart = False
    window.show()
    qtbot.wait(50)
    assert not window.welcome.isVisible() and pending_jobs() == 0
    window.welcome_on_first_start = False
    window.start_engine_work()
    assert not window.welcome.isVisible()
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=TIMEOUT)


def test_summary_lines_become_readable_html():
    lines = [
        "Your NVIDIA driver (470.1) is too old for Tunesmith: it will train on the CPU.",
        "What to do:",
        "  - Update the NVIDIA driver: on Ubuntu `sudo ubuntu-drivers install`.",
        "  - Then restart Tunesmith; this check runs again.",
    ]
    text = summary_html(lines)
    assert text.startswith("<div><b>Your NVIDIA driver (470.1)")
    assert text.count("<li>") == 2 and "<code>sudo ubuntu-drivers install</code>" in text
