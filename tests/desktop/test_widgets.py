"""Widget tests without the engine: live plots, the settings form, the banner, background jobs."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread

from tunesmith.core.config import RunConfig
from tunesmith.core.events import EvalMetrics, StepMetrics
from tunesmith.desktop.logic.settings_spec import SETTINGS
from tunesmith.desktop.widgets.banner import Banner
from tunesmith.desktop.widgets.live_plot import LivePlot
from tunesmith.desktop.widgets.run_plots import RunPlots
from tunesmith.desktop.widgets.settings_form import SettingsForm
from tunesmith.desktop.workers.background import pending_jobs, run_in_background


def test_live_plot_appends_and_redraws_on_its_timer(qtbot):
    plot = LivePlot("Loss", "loss", refresh_ms=20)
    qtbot.addWidget(plot)
    plot.add_curve("train", "#1f77b4")
    for step in range(1, 2001):
        plot.append("train", step, 1.0 / step)
    plot.append("train", 2001, None)  # skipped
    plot.append("train", 2002, float("nan"))  # skipped
    assert plot.points("train") == 2000
    assert plot.drawn_points("train") == 0  # nothing drawn until the timer ticks
    qtbot.waitUntil(lambda: plot.drawn_points("train") == 2000, timeout=2000)
    assert plot.plot_item.ctrl.downsampleCheck.isChecked() or plot.plot_item.downsampleMode()[1]
    assert plot.plot_item.clipToViewMode()
    plot.clear()
    assert plot.points("train") == 0 and plot.drawn_points("train") == 0


def test_run_plots_take_the_engines_events(qtbot):
    plots = RunPlots()
    qtbot.addWidget(plots)
    plots.add_step(
        StepMetrics(
            step=1,
            total_steps=4,
            epoch=0.25,
            loss=2.0,
            learning_rate=1e-4,
            grad_norm=None,
            tokens_per_second=100.0,
            peak_allocated_gb=1.0,
            peak_reserved_gb=1.5,
            memory_total_gb=24.0,
            eta_seconds=3.0,
        )  # fmt: skip
    )
    plots.add_eval(EvalMetrics(step=1, eval_loss=2.5))
    plots.flush()
    assert plots.loss.drawn_points("train") == 1 and plots.loss.drawn_points("eval") == 1
    assert plots.memory.drawn_points("reserved") == 1


def test_settings_form_round_trips_and_applies_limits(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    config = RunConfig()
    config.train.learning_rate = 1e-4
    config.lora.r = 32
    form.load(config)
    changed: list[str] = []
    form.sig_changed.connect(changed.append)
    form.editors["lora.r"].setValue(8)
    assert changed == ["lora.r"]
    form.store(config, "lora.r")
    assert config.lora.r == 8 and form.value("train.learning_rate") == pytest.approx(1e-4)
    assert all(form.editors[spec.path].toolTip() for spec in SETTINGS)
    form.apply_limits({"train.optimizer=adamw_8bit": "8-bit Adam needs an NVIDIA GPU."})
    optimizer = form.editors["train.optimizer"]
    row = optimizer.findData("adamw_8bit")
    assert not optimizer.model().item(row).isEnabled()
    assert "NVIDIA" in optimizer.model().item(row).toolTip()


def test_banner_shows_message_and_hint(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show_message("Could not read the dataset.", "Check line 3.", details="Traceback ...")
    assert banner.isVisibleTo(None) or not banner.isHidden()
    assert "Check line 3." in banner.text() and banner.details_button.isVisibleTo(banner)


def test_run_in_background_delivers_on_the_gui_thread(qtbot):
    gui = threading.get_ident()
    seen: dict[str, object] = {}

    def op():
        seen["worker"] = threading.get_ident()
        return 42

    run_in_background(op, lambda result: seen.update(result=result, thread=threading.get_ident()))
    qtbot.waitUntil(lambda: "result" in seen, timeout=5000)
    assert seen["result"] == 42 and seen["thread"] == gui and seen["worker"] != gui

    def broken():
        raise ValueError("bad file")

    run_in_background(broken, lambda _r: None, lambda error: seen.update(error=error))
    qtbot.waitUntil(lambda: "error" in seen, timeout=5000)
    assert str(seen["error"]) == "bad file" and "Traceback" in seen["error"].details
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=5000)
    assert QThread.currentThread() is not None


def test_learning_rate_reads_like_people_write_it(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    config = RunConfig()
    config.train.learning_rate = 2e-4
    form.load(config)
    editor = form.editors["train.learning_rate"]
    assert editor.text() == "0.0002" or editor.text() == "2e-04"
    editor.stepBy(-1)
    assert form.value("train.learning_rate") == pytest.approx(1e-4)


def test_export_dialog_offers_the_engines_formats(qtbot):
    from tunesmith.desktop.export_dialog import ExportDialog
    from tunesmith.desktop.logic.engines import export_choices

    formats, quants = export_choices()
    dialog = ExportDialog("/runs/r1", formats, quants)
    qtbot.addWidget(dialog)
    assert "gguf" in formats and "q8_0" in quants
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("lora"))
    assert dialog.choice() == ("lora", None, None) and not dialog.quant_combo.isEnabled()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("gguf"))
    dialog.output_edit.setText("/tmp/out.gguf")
    assert dialog.choice() == ("gguf", "q8_0", "/tmp/out.gguf")


def test_model_panel_shows_the_gpu_and_warns_when_it_will_not_fit(qtbot):
    from types import SimpleNamespace

    from tunesmith.core.hardware import HardwareInfo
    from tunesmith.desktop.controller import Controller
    from tunesmith.desktop.widgets.model_panel import ModelPanel

    controller = Controller()
    panel = ModelPanel(controller)
    qtbot.addWidget(panel)
    gpu = HardwareInfo(
        "cuda", "NVIDIA GeForce RTX 3060", (8, 6), 12.0, 11.2, 32.0, 8, "2.11", "13.0", "3.6", None, "3.11"
    )
    controller.hardware = gpu
    panel.show_hardware(gpu)
    text = panel.hardware_label.text()
    assert "RTX 3060" in text and "11.2 of 12.0 GiB" in text and "8.6" in panel.hardware_label.toolTip()
    four_bit = panel.precision_combo.findData("4bit")
    assert not panel.precision_combo.model().item(four_bit).isEnabled()  # no bitsandbytes on this "GPU"
    panel.show_vram(
        SimpleNamespace(
            total_gb=14.5,
            parts={"weights": 14.0},
            fits=False,
            message="Choose 4-bit precision or a smaller model.",
        )
    )
    assert panel.vram_label.text().startswith("⚠ Will not fit: about 14.5 GiB of VRAM")
    assert "4-bit" in panel.vram_label.text() and panel.vram_label.objectName() == "vramWarning"

    cpu = HardwareInfo("cpu", None, None, 0.0, 0.0, 24.0, 2, "2.13", None, None, None, "3.11")
    controller.hardware = cpu
    panel.show_hardware(cpu)
    assert "CPU only — training will be slow" in panel.hardware_label.text()


def test_method_settings_round_trip_lists_and_paths(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    config = RunConfig()
    form.load(config)
    form.editors["train.rewards"].setText("exact_match,  length:50 ,")
    form.store(config, "train.rewards")
    assert config.train.rewards == ["exact_match", "length:50"]
    form.store(config, "train.reward_file")
    assert config.train.reward_file is None
    config.train.reward_file = "/my/rewards.py"
    form.load(config)
    assert form.editors["train.reward_file"].text() == "/my/rewards.py"
    assert form.editors["train.rewards"].text() == "exact_match, length:50"


def test_banner_shows_progress_then_a_message_with_buttons_that_keep_it_open(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show_message("Export finished: LoRA adapter.", "Saved as ~/runs/r1/exports/r1-lora.", level="info")
    banner.show_progress("Exporting the GGUF file (Q8_0)…", 0.4, "Writing tensors")
    assert "Export finished" not in banner.text() and "Writing tensors" in banner.text()
    assert banner.progress.isVisibleTo(banner) and banner.progress.value() == 40
    clicks: list[str] = []
    banner.show_message(
        "Export finished: GGUF file (Q8_0).",
        "Saved as ~/runs/r1/exports/r1-q8_0.gguf.",
        level="info",
        buttons=[
            ("Open folder", lambda: clicks.append("open")),
            ("Copy path", lambda: clicks.append("copy")),
        ],
    )
    assert not banner.progress.isVisibleTo(banner)
    banner.button("Copy path").click()
    banner.button("Open folder").click()
    assert clicks == ["copy", "open"] and not banner.isHidden(), "these buttons leave the banner open"
    banner.show_message("Training failed.", "Lower the learning rate.")
    assert banner.button("Open folder") is None and banner.buttons == []
