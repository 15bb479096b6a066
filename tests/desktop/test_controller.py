"""The controller's short background jobs, on the real engine: hardware detection, the VRAM estimate that
follows the settings before anything loads, and the methods the engine offers."""

from __future__ import annotations

TIMEOUT = 120_000


def test_memory_estimate_follows_the_settings(window, qtbot):
    controller, panel = window.controller, window.model_panel
    qtbot.waitUntil(lambda: controller.hardware is not None and controller.vram is not None, timeout=TIMEOUT)
    assert "CPU only" in panel.hardware_label.text() or "GiB VRAM free" in panel.hardware_label.text()
    before = controller.vram.total_gb
    assert f"{before:.1f} GiB" in panel.vram_label.text()
    with qtbot.waitSignal(controller.sig_vram, timeout=TIMEOUT) as estimate:
        window.train_tab.form.editors["train.batch_size"].setValue(16)
        window.train_tab.form.editors["data.max_length"].setValue(2048)
    assert estimate.args[0].total_gb > before
    assert f"{estimate.args[0].total_gb:.1f} GiB" in panel.vram_label.text()


def test_every_method_of_the_engine_is_offered(window):
    from tunesmith.core.config import METHODS

    combo = window.train_tab.method_combo
    offered = [combo.itemData(row) for row in range(combo.count())]
    assert sorted(offered) == sorted(METHODS)
    assert all(combo.model().item(row).isEnabled() for row in range(combo.count()))
