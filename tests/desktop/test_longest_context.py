"""The max length's preset "Longest that fits" in the real window: the longest length for this card,
in words, before the model is loaded; said plainly on a machine without a GPU."""

from PySide6.QtCore import Qt

from tunesmith.core.context_plan import longest_context
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.models.model_shape import shape_of
from tunesmith.desktop.workers.background import pending_jobs

# An 8 GB card with bitsandbytes on a 16 GiB machine: the facts detect_hardware reports there.
CARD = HardwareInfo(
    "cuda", "NVIDIA GeForce RTX 3070", (8, 6), 8.0, 7.6, 16.0, 8, "2.11", "13.0", "3.6", "0.45", "3.11"
)
NO_GPU = HardwareInfo("cpu", None, None, 0.0, 0.0, 16.0, 2, "2.11", None, None, None, "3.11")


def show_hardware(window, hardware):
    window.controller.hardware = hardware
    window.controller.sig_hardware.emit(hardware)


def test_longest_that_fits_is_offered_for_the_card_and_sets_the_max_length(window, qtbot):
    row = window.train_tab.longest_row
    field = window.train_tab.form.editors["data.max_length"]
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=120_000)  # the window's own detection is done
    show_hardware(window, NO_GPU)
    assert "no NVIDIA GPU" in row.label.text()  # said at once: nothing to work out
    assert not row.button.isEnabled() and "tokens" not in row.label.text()

    show_hardware(window, CARD)
    expected = longest_context(shape_of("demo"), "sft", 8.0, 16.0, lora_r=8).tokens  # the window runs r=8
    assert 16 * 1024 <= expected <= field.maximum()
    words = f"Longest that fits on this card: {expected:,} tokens"
    qtbot.waitUntil(lambda: row.label.text().startswith(words), timeout=90_000)
    assert row.button.isEnabled() and row.button.text() == "Longest that fits"
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    assert field.value() == expected == window.controller.config.data.max_length
    assert window.train_tab.preset_combo.currentText() == "Custom"

    window.train_tab.method_combo.setCurrentIndex(window.train_tab.method_combo.findData("dpo"))
    dpo = longest_context(shape_of("demo"), "dpo", 8.0, 16.0, lora_r=8).tokens
    assert dpo < expected
    qtbot.waitUntil(lambda: f"{dpo:,} tokens (DPO" in row.label.text(), timeout=90_000)
    window.train_tab.method_combo.setCurrentIndex(window.train_tab.method_combo.findData("grpo"))
    qtbot.waitUntil(lambda: "GRPO" in row.label.text(), timeout=90_000)
    assert not row.button.isEnabled()
