"""`tunesmith data import` through core.cli.main, on files built in the test: a WhatsApp export (scrubbed,
checked turn by turn), a PDF and a DOCX sized with the demo model's tokenizer, a file of the wrong kind,
and an existing --out that is refused and left as it was."""

from __future__ import annotations

import json

from tunesmith.core.cli import main

from .doc_files import HEADER, handbook_pages, write_docx, write_pdf

# An Android export (day-first, 24-hour) with the encryption notice, an attachment and a two-line message.
WHATSAPP = """\
12/03/2024, 09:15 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even \
WhatsApp, can read or listen to them. Tap to learn more.
12/03/2024, 09:15 - Ann: Hi Bob! Are you coming to the harbour today?
12/03/2024, 09:16 - Bob: Yes, around ten.
12/03/2024, 09:16 - Bob: Call me at +44 7700 900123 if it rains
12/03/2024, 09:17 - Ann: <Media omitted>
12/03/2024, 09:18 - Ann: Great, bring the map
and the compass please
12/03/2024, 09:20 - Bob: Will do! Mail me at bob@example.com
13/03/2024, 18:02 - Ann: How was the trip?
13/03/2024, 18:05 - Bob: Windy but fine.
"""


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_whatsapp_import_writes_scrubbed_conversations_that_pass_data_check(tmp_path, capsys):
    chat = tmp_path / "WhatsApp Chat with Ann.txt"
    chat.write_text(WHATSAPP, encoding="utf-8")
    out = tmp_path / "chats.jsonl"
    assert main(["data", "import", "whatsapp", str(chat), "--out", str(out), "--me", "Bob", "--scrub"]) == 0
    printed = capsys.readouterr().out
    assert _rows(out) == [
        {
            "messages": [
                {"role": "user", "content": "Hi Bob! Are you coming to the harbour today?"},
                {"role": "assistant", "content": "Yes, around ten.\nCall me at <PHONE> if it rains"},
                {"role": "user", "content": "Great, bring the map\nand the compass please"},
                {"role": "assistant", "content": "Will do! Mail me at <EMAIL>"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "How was the trip?"},
                {"role": "assistant", "content": "Windy but fine."},
            ]
        },
    ]
    assert f"{chat} (whatsapp): kept 2 of 2 conversations" in printed
    assert "skipped 1: system lines" in printed and "Replaced for privacy: 1 email, 1 phone." in printed
    assert f"Next: tunesmith data check {out}" in printed and f"tunesmith train --data {out}" in printed
    assert main(["data", "check", str(out), "--no-tokens"]) == 0
    assert "format messages; 2 of 2 rows usable" in capsys.readouterr().out

    # Without --me the speakers are listed; an existing --out is refused before anything is read.
    before = out.read_bytes()
    assert main(["data", "import", "whatsapp", str(chat), "--out", str(tmp_path / "new.jsonl")]) == 1
    assert "say which speaker is you (--me NAME)" in capsys.readouterr().err
    assert main(["data", "import", "whatsapp", str(chat), "--out", str(out), "--me", "Ann"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: --out {out}: already exists and was left as it is. Choose a new name, or add --overwrite."
    )
    assert out.read_bytes() == before and not (tmp_path / "new.jsonl").exists()


def test_docs_import_with_the_models_tokenizer_and_a_wrong_format_file(tmp_path, capsys):
    pdf = write_pdf(tmp_path / "handbook.pdf", handbook_pages(3))
    docx = write_docx(tmp_path / "memo.docx")
    out = tmp_path / "docs.jsonl"
    args = ["data", "import", "docs", str(pdf), str(docx), "--out", str(out), "--model", "demo"]
    assert main([*args, "--max-length", "64"]) == 0
    printed = capsys.readouterr().out
    assert f"{pdf} (docs): kept" in printed and "skipped 6: header, footer and page-number lines" in printed
    texts = [row["text"] for row in _rows(out)]
    assert texts[0].startswith("The rope section explains") and not any(HEADER in text for text in texts)
    assert any(text.startswith("Harbour opening hours") for text in texts)
    assert main(["data", "check", str(out), "--model", "demo", "--max-length", "64"]) == 0
    assert f"0 of {len(texts)} longer than max_length 64" in capsys.readouterr().out

    # A chat export given as a document: one line saying what it is and which source reads it.
    chat = tmp_path / "chat.txt"
    chat.write_text(WHATSAPP, encoding="utf-8")
    assert main(["data", "import", "docs", str(chat), "--out", str(tmp_path / "wrong.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: {chat}: this is not a document; it looks like a WhatsApp chat export: import it as whatsapp"
    )
    assert not (tmp_path / "wrong.jsonl").exists()
