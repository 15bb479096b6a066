"""Plots people can read (issue 21, point 10), through the real window.

A real run on the embedded model (CPU) must show: the learning rate's axis in plain numbers ("2e-4",
never "200" under "x1e-06"); the memory as "2.1 of 23.5 GiB" in the memory plot's title, one line on
the CPU (no "reserved"); no legend entry for a curve without points (no evaluation in this run); the
loss smoothed with the raw loss behind it; values where the pointer hovers; and one line reading the
curve in words.  A GRPO run recorded from the CLI (tests/desktop/data/grpo_run) is redrawn through
Run ▸ Past runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt

from tunesmith.desktop.logic.curve_reading import smooth
from tunesmith.desktop.logic.formatting import format_plain_number

GRPO_RUN = Path(__file__).parent / "data" / "grpo_run"
TIMEOUT = 240_000


def tick_labels(plot, side: str = "left") -> list[str]:
    """The tick labels the axis draws now (as AxisItem.generateDrawSpecs asks for them)."""
    axis = plot.plot_item.getAxis(side)
    low, high = plot.plot_item.viewRange()[1 if side == "left" else 0]
    levels = axis.tickValues(low, high, axis.height() if side == "left" else axis.width())
    spacing, values = levels[0]
    return axis.tickStrings(values, axis.autoSIPrefixScale * axis.scale, spacing)


def hover(qtbot, plot, x: float, y: float) -> None:
    """Move the real mouse over the plot at data coordinates (x, y)."""
    scene = plot.plot_item.vb.mapViewToScene(QPointF(x, y))
    qtbot.mouseMove(plot.plot_widget.viewport(), plot.plot_widget.mapFromScene(scene))


@pytest.mark.slow
def test_a_real_run_is_plotted_in_plain_words_and_numbers(window, qtbot):
    controller, train = window.controller, window.train_tab
    controller.config.train.max_steps = 6
    controller.config.train.learning_rate = 2e-4
    controller.config.train.lr_scheduler = "constant"
    train.load_from_config()
    window.resize(1200, 820)
    window.tabs.setCurrentWidget(train)
    qtbot.waitUntil(lambda: controller.hardware is not None, timeout=TIMEOUT)
    assert controller.hardware.device == "cpu", "this test reads the CPU's memory plot"
    with qtbot.waitSignal(controller.training.sig_finished, timeout=TIMEOUT):
        qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not controller.training.is_running(), timeout=TIMEOUT)
    plots = train.plots
    plots.flush()
    qtbot.wait(50)  # let the axes take their new ranges

    # The learning rate in plain numbers: 2e-4 reads "2e-4", no "x1e-06" factor beside the axis.
    labels = tick_labels(plots.lr)
    assert "2e-4" in labels, labels
    assert "x1e" not in plots.lr.plot_item.getAxis("left").labelString()
    assert all(label == format_plain_number(float(label)) for label in labels)

    # Memory: one line on the CPU, its number in the title against the machine's total.
    assert plots.memory.legend_labels() == ["peak RAM used"]
    assert plots.memory.points("reserved") == 0 and plots.memory.points("allocated") == 6
    last_peak = plots.memory.values("allocated")[1][-1]
    assert plots.memory.title().startswith(f"RAM (this process): {last_peak:.1f} of ")
    assert plots.memory.title().endswith(" GiB")

    # No legend entry without data (this run has no evaluation); the loss smoothed, the raw one faint.
    assert plots.loss.legend_labels() == ["train (each step)", "train (smoothed)"]
    steps, raw = plots.loss.values("train")
    assert plots.loss.values("smoothed") == (steps, pytest.approx(smooth(raw)))
    faint = plots.loss._curves["train"].opts["pen"]
    assert faint.color().alpha() < 255 and faint.widthF() < 2

    # One line reading the curve, in words, visible above the plots.
    assert plots.reading.isVisibleTo(train) and plots.reading.text().startswith("Loss ")

    # Hovering shows the values at the step under the pointer.
    hover(qtbot, plots.loss, steps[2], raw[2])
    qtbot.waitUntil(lambda: plots.loss.hover_text != "", timeout=2000)
    assert plots.loss.hover_text.startswith(f"step {int(steps[2])} · train (each step) {raw[2]:.4g}")
    hover(qtbot, plots.lr, steps[2], 2e-4)
    qtbot.waitUntil(lambda: "learning rate 2e-4" in plots.lr.hover_text, timeout=2000)


def test_a_past_grpo_run_points_to_its_reward_not_its_loss(window, qtbot):
    """The recorded GRPO run (CPU, memory logged under the old names, no evaluation) through Run ▸ Show
    a past run's plots: plain numbers, one memory line, no empty legend entries, and a reading that
    sends the user to the reward (GRPO's loss hovers around 0 whatever the answers are like)."""
    window.train_tab.plots.set_memory_label(False)  # what the CPU detection does; the run was on a CPU
    window.show_past_run(str(GRPO_RUN))
    plots = window.train_tab.plots
    plots.flush()
    qtbot.wait(50)
    assert window.tabs.currentWidget() is window.train_tab
    assert "evaluation" not in plots.loss.legend_labels()
    assert plots.memory.legend_labels() == ["peak RAM used"]
    assert plots.memory.title() == "RAM (this process): 1.3 of 23.5 GiB"
    # Three steps: too few for a trend, and the line says to watch the reward rather than the loss.
    assert plots.reading.text() == (
        "GRPO: watch the reward (below), not the loss; its trend shows after a few more steps."
    )
    labels = tick_labels(plots.lr)
    assert labels and not any(label.isdigit() and int(label) >= 100 for label in labels), labels
    assert plots.lr.show_values_at(2.2) == "step 2 · learning rate 0.001333"
