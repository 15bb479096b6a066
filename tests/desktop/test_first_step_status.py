"""The Train tab says what step 1 is doing while it runs (issue 15): the engine's RunStarted carries the
words (core.training.first_step) and the status line shows them beside the device until step 1's
progress line replaces them."""

from __future__ import annotations

from tunesmith.core.events import RunStarted
from tunesmith.core.training.first_step import first_step_words


def test_the_status_line_names_what_step_one_prepares(window, tmp_path):
    train = window.train_tab
    words = first_step_words("cuda:0", True, pinned_limit_bytes=24 << 30, cache=tmp_path / "cold")
    event = RunStarted(
        run_dir=str(tmp_path), total_steps=10, device="cuda:0", precision="4bit", first_step=words
    )
    train.session.sig_started.emit(event)
    text = train.status_label.text()
    assert text.startswith("Training on cuda:0 (4bit). Step 1 takes longer than the rest")
    assert "compiles Tunesmith's GPU kernels" in text and "at most 24.0 GiB" in text

    train.session.sig_started.emit(RunStarted(run_dir=str(tmp_path), total_steps=10, device="cpu"))
    assert train.status_label.text() == "Training on cpu (fp32)."  # nothing to say on the CPU
