"""The step event's peak memory is what the CLI's step line and the app's memory plot show."""

import json

import pytest

from tunesmith.core.cli_commands import format_step
from tunesmith.core.events import StepMetrics
from tunesmith.desktop.logic.formatting import progress_line
from tunesmith.desktop.logic.run_history import read_run
from tunesmith.desktop.widgets.run_plots import RunPlots

EVENT = StepMetrics(
    step=4, total_steps=10, epoch=0.4, loss=1.25, learning_rate=2e-4, grad_norm=0.5,
    tokens_per_second=1500.0, peak_allocated_gb=13.5, peak_reserved_gb=14.25, memory_total_gb=24.0,
    eta_seconds=90.0,
)  # fmt: skip


def test_cli_and_app_step_lines_say_peak():
    assert "peak mem 13.5 GiB" in format_step(EVENT)
    assert "peak 13.5 GiB" in progress_line(EVENT)


def test_memory_plot_draws_the_peaks_against_the_total(qtbot):
    plots = RunPlots()
    qtbot.addWidget(plots)
    plots.add_step(EVENT)
    plots.flush()
    assert plots.memory.values("allocated") == ([4.0], [13.5])
    assert plots.memory.values("reserved") == ([4.0], [14.25])
    legend = [label.text for _, label in plots.memory.plot_item.legend.items]
    assert legend == ["peak allocated", "peak reserved"]
    low, high = plots.memory.plot_item.viewRange()[1]
    assert low <= 0.0 and high == pytest.approx(24.0, rel=0.05)  # the axis runs to the card's total


def test_memory_plot_reads_old_run_folders(tmp_path):
    """Run folders from before the peaks logged the between-steps numbers as memory_*_gb."""
    old = EVENT.to_dict()
    old["memory_allocated_gb"], old["memory_reserved_gb"] = (
        old.pop("peak_allocated_gb"),
        old.pop("peak_reserved_gb"),
    )
    (tmp_path / "metrics.jsonl").write_text(json.dumps(old) + "\n")
    plots = RunPlots()
    for step in read_run(tmp_path).steps:
        plots.add_step(step)
    plots.flush()
    assert plots.memory.values("allocated") == ([4.0], [13.5])
    plots.deleteLater()
