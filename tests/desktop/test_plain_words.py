"""Words on the labels, not only in tooltips (issue 21.12), read off the real window."""

from __future__ import annotations

TIMEOUT = 120_000


def test_the_window_says_things_in_words(window, qtbot):
    controller = window.controller
    qtbot.waitUntil(lambda: controller.dataset is not None, timeout=TIMEOUT)
    # The format's name comes with what it means.
    assert (
        "Format: <b>messages</b> (OpenAI messages (role / content))"
        in window.dataset_tab.summary_label.text()
    )
    # Max steps at -1 reads as what it does.
    form = window.train_tab.form
    controller.config.train.max_steps = -1
    form.load(controller.config)
    assert form.editors["train.max_steps"].text() == "Use epochs"
    # Precisions in plain words.
    precision = window.model_panel.precision_combo
    words = [precision.itemText(row) for row in range(precision.count())]
    assert "4-bit — least memory (QLoRA, NVIDIA GPU)" in words and all(" " in text for text in words)
    # The first start says what to do first.
    window.show_welcome()
    steps = window.welcome.steps_label.text()
    assert "1 Dataset" in steps and "sample is already loaded" in steps and "3 Chat" in steps
