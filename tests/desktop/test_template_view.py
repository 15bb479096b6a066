"""The Dataset tab shows the chat template readably (issue 21.12): role headings instead of markup, the
raw text one click away, and a note when the model's template adds a system message the row lacks.

Rendered with the embedded model's real tokenizer and template (SmolLM2's ChatML adds a default system
message to a conversation without one).
"""

from __future__ import annotations

from tunesmith.desktop.logic.template_view import added_system_message, readable

TIMEOUT = 120_000


def test_markup_becomes_role_headings_and_the_trained_marks_stay():
    segments = [
        ("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", False),
        ("Hello!<|im_end|>", True),
    ]
    assert readable(segments) == [("[User]\nHi there\n[Assistant]\n", False), ("Hello!", True)]
    llama = [("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", False)]
    assert readable(llama) == [("[User]\nHi", False)]


def test_a_system_message_counts_as_added_only_when_the_row_has_none():
    rendered = "<|im_start|>system\nYou are SmolLM.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    assert added_system_message(rendered, [{"role": "user", "content": "Hi"}]) == "You are SmolLM."
    written = [{"role": "system", "content": "You are SmolLM."}, {"role": "user", "content": "Hi"}]
    assert added_system_message(rendered, written) is None


def test_the_dataset_tab_shows_the_sample_readably_with_the_raw_text_a_click_away(window, qtbot):
    controller, tab = window.controller, window.dataset_tab
    qtbot.waitUntil(lambda: controller.dataset is not None, timeout=TIMEOUT)
    row = controller.dataset.rows[0]
    tab.show_row(0)
    page = tab.row_view.toPlainText()
    assert "[User]" in page and "[Assistant]" in page and "<|im_start|>" not in page
    # SmolLM2's template adds its default system message to rows without one, as the sample's are.
    assert row.added_system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert "adds a system message you did not write" in page and row.added_system in page
    tab.raw_check.setChecked(True)
    assert "<|im_start|>" in tab.row_view.toPlainText()
    assert "background-color" in tab.row_view.toHtml()  # the trained-on part is still marked
