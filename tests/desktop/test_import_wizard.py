"""The Dataset tab's Import wizard, driven through the real window: a file of the wrong kind is named with
the source that reads it; a WhatsApp export built here goes through the speakers found, scrubbing (on by
default) and a new file beside the runs folder (an existing file is refused), and ends in the tab's
preview of the imported conversations."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from tunesmith.core.data.importers import ImportOptions

TIMEOUT = 120_000
# An iPhone export (bracketed, seconds, day-first) with an attachment line and a two-line message.
WHATSAPP = """\
[12/03/2024, 09:15:02] Ann: Hi Bob! Are you coming to the harbour today?
[12/03/2024, 09:16:10] Bob: Yes, around ten.
[12/03/2024, 09:16:40] Bob: Call me at +44 7700 900123 if it rains
[12/03/2024, 09:17:00] Ann: \u200eimage omitted
[12/03/2024, 09:18:30] Ann: Great, bring the map
and the compass please
[12/03/2024, 09:20:00] Bob: Will do!
[13/03/2024, 18:02:00] Ann: How was the trip?
[13/03/2024, 18:05:00] Bob: Windy but fine.
"""
TELEGRAM = {
    "name": "Ann",
    "type": "personal_chat",
    "id": 1,
    "messages": [
        {
            "id": 1,
            "type": "message",
            "date": "2024-03-12T09:15:00",
            "date_unixtime": "1710234900",
            "from": "Ann",
            "from_id": "user1",
            "text": "Hi",
        }
    ],
}


def test_import_wizard_ends_in_the_preview_of_the_imported_chat(window, qtbot, tmp_path):
    tab = window.dataset_tab
    chat = tmp_path / "WhatsApp Chat with Ann.txt"
    chat.write_text(WHATSAPP, encoding="utf-8")
    telegram = tmp_path / "result.json"
    telegram.write_text(json.dumps(TELEGRAM), encoding="utf-8")
    existing = tmp_path / "existing.jsonl"
    existing.write_text("keep me\n")
    qtbot.mouseClick(tab.import_button, Qt.MouseButton.LeftButton)
    wizard = tab.import_wizard
    assert wizard.isVisible()
    files = wizard.files_page

    # A Telegram export read as WhatsApp: the wizard says what it is and which source reads it.
    files.set_files([str(telegram)])
    assert wizard.source == "telegram"  # guessed from the file
    files.source_combo.setCurrentIndex(files.source_combo.findData("whatsapp"))
    qtbot.waitUntil(lambda: "import it as telegram" in files.status.text(), timeout=TIMEOUT)
    assert "this is not a WhatsApp chat export" in files.status.text() and not files.isComplete()

    files.set_files([str(chat)])
    assert wizard.source == "whatsapp"
    qtbot.waitUntil(files.isComplete, timeout=TIMEOUT)
    wizard.next()
    options = wizard.options_page
    speakers = {options.me_combo.itemData(i) for i in range(options.me_combo.count())}
    assert speakers == {"Ann", "Bob"} and not options.isComplete()  # the person says who they are
    assert options.scrub_check.isChecked()  # privacy on by default in the app
    options.me_combo.setCurrentIndex(options.me_combo.findData("Bob"))
    options.names_edit.setText("Bob")
    assert options.isComplete()
    wizard.next()
    output = wizard.output_page
    offered = Path(output.path_edit.text())
    assert offered.parent == tmp_path / "datasets" and offered.suffix == ".jsonl" and output.isComplete()
    output.path_edit.setText(str(existing))
    assert not output.isComplete() and "already exists" in output.status.text()
    output.path_edit.setText(str(offered))
    wizard.next()
    qtbot.waitUntil(wizard.run_page.isComplete, timeout=TIMEOUT)
    summary = wizard.run_page.summary.toPlainText()
    assert "2 rows ready to train on." in summary and "Replaced for privacy:" in summary
    assert f"{chat} (whatsapp): kept 2 of 2 conversations" in summary

    wizard.button(QWizard.WizardButton.FinishButton).click()
    qtbot.waitUntil(
        lambda: tab._shown_path == str(offered) and window.controller.dataset is not None, timeout=TIMEOUT
    )
    assert existing.read_text() == "keep me\n"
    rows = [json.loads(line) for line in offered.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["messages"][:2] == [
        {"role": "user", "content": "Hi <NAME>! Are you coming to the harbour today?"},
        {"role": "assistant", "content": "Yes, around ten.\nCall me at <PHONE> if it rains"},
    ]
    assert tab.rows_table.rowCount() == 2 and "format: <b>messages</b>" in tab.summary_label.text().lower()
    assert "Are you coming to the harbour today?" in tab.rows_table.item(0, 2).text()
    shown = tab.row_view.toPlainText()
    assert "Hi <NAME>! Are you coming" in shown and "Great, bring the map\nand the compass please" in shown


def test_import_plan_reads_a_tables_columns_and_offers_only_new_files(tmp_path):
    from tunesmith.desktop.logic import import_plan

    table = tmp_path / "messages.csv"
    table.write_text("When;Who;What\n2024-03-12 09:15;Ann;Hi there\n2024-03-12 09:16;Bob;Hello Ann\n")
    # Columns not named as usual: no refusal yet (the wizard asks for them next), in the table's order.
    scan = import_plan.scan_files("csv", [table])
    assert (scan.problem, scan.speakers, scan.columns) == ("", {}, ["When", "Who", "What"])
    columns = import_plan.offered_csv_columns(scan.columns)
    assert columns == {"time": "When", "author": "Who", "text": "What"}
    assert import_plan.scan_files("csv", [table], columns).speakers == {"Ann": 1, "Bob": 1}
    # A table given as documents is refused at once, with the source that reads it.
    assert import_plan.scan_files("docs", [table]).problem.endswith(
        "it looks like a table (CSV): import it as csv"
    )

    first = import_plan.default_output(tmp_path / "runs", "csv", [table])
    assert first.parent == tmp_path / "datasets" and first.name.startswith("csv-messages-")
    first.parent.mkdir()
    first.write_text("{}\n")
    second = import_plan.default_output(tmp_path / "runs", "csv", [table])
    assert second != first and second.name.endswith("-2.jsonl")
    assert "already exists" in import_plan.output_problem(first, [table])
    assert "one of the files to import" in import_plan.output_problem(
        table.with_suffix(".jsonl"), [table.with_suffix(".jsonl")]
    )
    assert import_plan.output_problem(second, [table]) == ""

    # Documents whose model's tokenizer will not load are still imported, sized by words, and it says so.
    notes = tmp_path / "notes.md"
    notes.write_text("# Tides\n\nHigh tide comes twice a day.\n")
    missing = str(tmp_path / "no-such-model")
    done = import_plan.run_import(
        "docs",
        [notes],
        ImportOptions(max_tokens=100),
        second,
        lambda: import_plan.model_token_counter(missing),
    )
    assert "estimated from word counts: the model's tokenizer did not load" in done.note
    assert [json.loads(line) for line in second.read_text().splitlines()] == [
        {"text": "# Tides\n\nHigh tide comes twice a day."}
    ]
    assert done.written == second and f"Written to {second}." in done.summary()
