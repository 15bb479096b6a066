"""The max length in the real window: the Dataset tab says how many rows are longer and what training
does with them ('Rows too long'); the preset "Longest that fits" gives the longest length for this card,
in words, before the model is loaded, and says plainly on a machine without a GPU that there is none."""

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


def test_long_rows_are_counted_and_the_longest_that_fits_is_offered(window, qtbot):
    row = window.train_tab.longest_row
    field = window.train_tab.form.editors["data.max_length"]
    qtbot.waitUntil(lambda: pending_jobs() == 0, timeout=120_000)  # the window's own detection is done
    form, summary = window.train_tab.form, window.dataset_tab.summary_label
    form.editors["data.max_length"].setValue(50)  # the sample's rows are 46 tokens and up
    qtbot.waitUntil(
        lambda: pending_jobs() == 0 and "longer than the max length" in summary.text(), timeout=120_000
    )
    over = window.dataset_tab.histogram.over_cut
    assert (
        0 < over < 32
        and f"<b>{over}</b> example(s) are longer than the max length: they will be cut at 50"
        in summary.text()
    )
    too_long = form.editors["data.too_long"]
    too_long.setCurrentIndex(too_long.findData("split"))
    assert window.controller.config.data.too_long == "split"
    assert (
        f"<b>{over}</b> example(s) are longer than the max length: they will be split into pieces of at most 50 tokens"
        in summary.text()
    )
    show_hardware(window, NO_GPU)
    assert "no NVIDIA GPU" in row.label.text()  # said at once: nothing to work out
    assert not row.button.isEnabled() and "tokens" not in row.label.text()

    show_hardware(window, CARD)
    plan = longest_context(shape_of("demo"), "sft", 7.6, 16.0, lora_r=8)  # the window runs r=8
    expected = plan.tokens
    assert 16 * 1024 <= expected <= field.maximum()
    words = f"Longest that fits on this card: {expected:,} tokens"
    qtbot.waitUntil(lambda: row.label.text().startswith(words), timeout=90_000)
    assert row.button.isEnabled() and row.button.text() == "Longest that fits"
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    # the demo model was trained on 8,192-token contexts: the button sets that, and the row says why
    assert plan.offered == 8192 and "trained on up to 8,192 tokens" in row.label.text()
    assert field.value() == plan.offered == window.controller.config.data.max_length
    assert window.train_tab.preset_combo.currentText() == "Custom"

    window.train_tab.method_combo.setCurrentIndex(window.train_tab.method_combo.findData("dpo"))
    dpo = longest_context(shape_of("demo"), "dpo", 7.6, 16.0, lora_r=8).tokens
    assert dpo < expected
    qtbot.waitUntil(lambda: f"{dpo:,} tokens (DPO" in row.label.text(), timeout=90_000)
    window.train_tab.method_combo.setCurrentIndex(window.train_tab.method_combo.findData("grpo"))
    qtbot.waitUntil(lambda: "GRPO" in row.label.text(), timeout=90_000)
    assert not row.button.isEnabled()
