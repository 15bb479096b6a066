"""The dataset journey through the real Dataset tab (issue 21, points 4-7): a file that cannot be used
clears the preview, stays marked with the reason and keeps Start from running; the user's own column
names are recognised or mapped once and remembered; problems are always listed, each with its raw line;
Reload (F5), Enter on the same path and the "file changed" notice read a fixed file again."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

TIMEOUT = 120_000


def loaded(window, qtbot, path) -> None:
    """Wait until the tab shows `path` (a preview or a failure)."""
    tab = window.dataset_tab
    qtbot.waitUntil(lambda: tab._shown_path == str(path), timeout=TIMEOUT)


def reloads(window, qtbot, action) -> None:
    """Run `action` and wait until it has read the dataset once more."""
    with qtbot.waitSignal(
        window.controller.sig_dataset_busy, check_params_cb=lambda busy: not busy, timeout=TIMEOUT
    ):
        action()


def test_a_file_that_cannot_be_used_clears_the_preview_and_stops_start(window, qtbot, tmp_path):
    tab, controller = window.dataset_tab, window.controller
    controller.load_dataset()
    qtbot.waitUntil(lambda: controller.dataset is not None, timeout=TIMEOUT)
    assert tab.rows_table.rowCount() > 0  # the sample's rows
    picture = tmp_path / "photo.json"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    tab.open_path(str(picture))
    loaded(window, qtbot, picture)
    assert controller.dataset is None and "not a text file" in controller.dataset_problem
    assert tab.rows_table.rowCount() == 0 and tab.histogram.over_cut == 0
    assert "This file can't be used." in tab.summary_label.text()
    assert "it looks like a PNG picture" in tab.summary_label.text()
    assert "Traceback" not in window.banner.text()
    tab._on_busy(False)  # a later idle signal does not wipe the state
    assert "can't be used" in tab.summary_label.text()
    assert not window.train_tab.start_button.isEnabled()
    assert "Fix the dataset first" in window.train_tab.start_button.toolTip()
    window.train_tab.start()  # Ctrl+Return reaches it even so: the controller refuses too
    assert not controller.training.is_running()
    assert "Fix the dataset first." in window.banner.text()
    assert not (tmp_path / "runs").exists()  # no run folder for a run that never started


def test_own_column_names_are_recognised_or_mapped_once_and_remembered(window, qtbot, tmp_path):
    tab = window.dataset_tab
    qa = tmp_path / "qa.csv"
    qa.write_text("question,answer\nWho are you?,Tunesmith.\nWhat is 2+2?,4\n")
    tab.open_path(str(qa))
    loaded(window, qtbot, qa)
    assert window.controller.dataset.usable_rows == 2 and not tab.column_step.isVisible()
    odd = tmp_path / "odd.csv"
    odd.write_text("id,Frage,Antwort\n1,Wie heißt du?,Tunesmith.\n2,Was ist 2+2?,4\n")
    tab.open_path(str(odd))
    loaded(window, qtbot, odd)
    assert "Its columns are: id, Frage, Antwort." in tab.summary_label.text()
    assert "--columns" not in tab.summary_label.text()  # the command line's way; the tab asks instead
    assert "odd.csv can't be used: the Dataset tab says why" in window.banner.text()
    step = tab.column_step
    assert step.isVisible() and [step.question_combo.itemText(i) for i in range(3)] == [
        "id",
        "Frage",
        "Antwort",
    ]
    assert step.chosen() == "question=Frage,answer=Antwort"  # the row number is passed over
    step.answer_combo.setCurrentText("Frage")
    assert not step.use_button.isEnabled()  # one column cannot be both
    step.answer_combo.setCurrentText("Antwort")
    reloads(window, qtbot, lambda: qtbot.mouseClick(step.use_button, Qt.MouseButton.LeftButton))
    preview = window.controller.dataset
    assert (preview.usable_rows, preview.columns) == (2, {"question": "Frage", "answer": "Antwort"})
    assert "question: <b>Frage</b>, answer: <b>Antwort</b>" in tab.summary_label.text()
    assert "Tunesmith." in tab.row_view.toPlainText()
    assert window.controller.config.data.columns == "question=Frage,answer=Antwort"
    tab.open_path(str(qa))  # another file: its own names again
    loaded(window, qtbot, qa)
    assert window.controller.config.data.columns == ""
    tab.open_path(str(odd))  # back: the choice is remembered for this file
    loaded(window, qtbot, odd)
    qtbot.waitUntil(lambda: window.controller.dataset is not None, timeout=TIMEOUT)
    assert window.controller.dataset.usable_rows == 2


def test_a_forced_format_lists_every_problem_with_its_raw_line(window, qtbot, tmp_path):
    tab = window.dataset_tab
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"q": f"q{i}", "a": f"a{i}"}) + "\n" for i in range(3)))
    tab.open_path(str(path))
    loaded(window, qtbot, path)
    reloads(window, qtbot, lambda: tab.format_combo.setCurrentText("text"))
    assert "no usable rows as text (3 problems" in tab.summary_label.text()
    assert tab.problems_table.rowCount() == 3 and tab.side_tabs.tabText(1) == "Problems (3)"
    tab.problems_table.setCurrentCell(2, 0)
    page = tab.row_view.toPlainText()
    assert "Line 3 as it is in the file:" in page and '{"q": "q2", "a": "a2"}' in page
    assert "text: missing" in page


def test_reload_f5_enter_and_the_changed_notice_read_a_fixed_file(window, qtbot, tmp_path):
    tab = window.dataset_tab
    good = json.dumps({"question": "Who are you?", "answer": "Tunesmith."})
    path = tmp_path / "data.jsonl"
    path.write_text(f'{good}\n{{"question": "cut off", "answer": "Tunes\n{good}\n')
    tab.open_path(str(path))
    loaded(window, qtbot, path)
    qtbot.waitUntil(lambda: window.controller.dataset is not None, timeout=TIMEOUT)
    assert tab.problems_table.rowCount() == 1 and tab.problems_table.item(0, 0).text() == "2"
    assert "the line is cut off" in tab.problems_table.item(0, 2).text()
    tab.problems_table.setCurrentCell(0, 2)
    assert '{"question": "cut off", "answer": "Tunes' in tab.row_view.toPlainText()
    path.write_text(f"{good}\n{good}\n{good}\n")  # fixed in an editor
    qtbot.waitUntil(tab.changed_notice.isVisible, timeout=10_000)
    assert "changed on disk" in tab.changed_label.text()
    reloads(window, qtbot, lambda: qtbot.mouseClick(tab.changed_reload, Qt.MouseButton.LeftButton))
    assert not tab.changed_notice.isVisible()
    assert window.controller.dataset.usable_rows == 3 and tab.problems_table.rowCount() == 0
    path.write_text(f"{good}\n{{oops\n")
    window.dataset_tab.setFocus()
    reloads(window, qtbot, lambda: qtbot.keyClick(tab, Qt.Key.Key_F5))
    assert tab.problems_table.rowCount() == 1
    path.write_text(f"{good}\n")
    tab.path_edit.setFocus()
    reloads(window, qtbot, lambda: qtbot.keyClick(tab.path_edit, Qt.Key.Key_Return))  # same path: reload
    assert tab.problems_table.rowCount() == 0 and window.controller.dataset.usable_rows == 1


def test_a_table_with_more_columns_offers_to_change_the_found_ones(window, qtbot, tmp_path):
    tab = window.dataset_tab
    path = tmp_path / "qa.csv"
    path.write_text("question,answer,explanation\nWhat is 2+2?,4,Two and two make four.\n")
    tab.open_path(str(path))
    loaded(window, qtbot, path)
    step = tab.column_step
    assert step.isVisible() and step.chosen() == "question=question,answer=answer"
    step.answer_combo.setCurrentText("explanation")
    reloads(window, qtbot, step.use_button.click)
    assert window.controller.dataset.columns == {"question": "question", "answer": "explanation"}
    assert "Two and two make four." in tab.row_view.toPlainText()
