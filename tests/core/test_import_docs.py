"""The docs importer on real documents built in the test: a 4-page PDF with a running header and
'Page N of M' footers, a DOCX with a header, footer and table, Markdown and text; chunks fit the demo
model's max length as the engine renders them, and the output loads as the engine's plain-text format."""

from __future__ import annotations

import re

import pytest

from tunesmith.core.data import load_dataset_file, render_example
from tunesmith.core.data.importers import ImportOptions, ImportProblem, import_files, write_jsonl
from tunesmith.core.data.importers.doc_text import (
    chunk_paragraphs,
    paragraphs_of_lines,
    strip_page_furniture,
    words_token_estimate,
)
from tunesmith.core.data.importers.docs import read_docs

from .doc_files import HEADER, TOPICS, handbook_pages, write_docx, write_pdf


def test_pdf_chunks_are_whole_paragraphs_without_headers_footers_or_page_numbers(tmp_path):
    pdf = write_pdf(tmp_path / "handbook.pdf", handbook_pages(4))
    rows, report = read_docs(pdf, ImportOptions(max_tokens=200))
    text = "\n\n".join(row["text"] for row in rows)
    assert HEADER not in text and not re.search(r"Page \d", text)
    assert report.skipped == {"header, footer and page-number lines repeated across the pages": 8}
    paragraphs = text.split("\n\n")
    # Twelve paragraphs, each its four lines joined back into one, in the document's order.
    assert [p.split()[1] for p in paragraphs] == TOPICS[:12]
    assert all(p.endswith(f"That is all for {p.split()[1]}.") and p.count(". ") == 3 for p in paragraphs)
    assert all(words_token_estimate(row["text"]) <= 200 for row in rows)
    assert len(rows) == 6  # two paragraphs (about 80 estimated tokens each) per 200-token chunk
    assert report.conversations_read == report.conversations_kept == 6


def test_a_paragraph_over_the_limit_is_split_at_sentences_then_words():
    sentence = "Each sentence here has exactly eight words."
    paragraph = " ".join([sentence] * 6)
    counted = len  # one token per character: exact, easy to reason about
    chunks = chunk_paragraphs(["Short opener.", paragraph], 100, counted)
    assert chunks[0] == "Short opener."  # the long paragraph does not share a chunk it cannot fit
    assert chunks[1:] == [f"{sentence} {sentence}"] * 3  # 87 characters each: two sentences fit
    assert all(len(chunk) <= 100 for chunk in chunks)
    endless = "word " * 60  # one "sentence" of 300 characters
    assert all(len(piece) <= 40 for piece in chunk_paragraphs([endless], 40, counted))


def test_page_furniture_needs_to_repeat_and_lines_rejoin():
    pages = [["Report 2026", "Body text of page one.", "3"], ["Other top", "Body of page two.", "- 4 -"]]
    kept, removed = strip_page_furniture(pages)
    # The headers differ beyond their digits, so they stay; bare page numbers go.
    assert kept == [["Report 2026", "Body text of page one."], ["Other top", "Body of page two."]]
    assert removed == 2
    lines = [
        "A long line of the first paragraph that runs to the full width of the",
        "page and ends here.",
        "Then a hyphen-",
        "ated word and a second para-",
        "graph that goes on for a while longer.",
    ]
    assert paragraphs_of_lines(lines) == [
        "A long line of the first paragraph that runs to the full width of the page and ends here.",
        "Then a hyphenated word and a second paragraph that goes on for a while longer.",
    ]


def test_docx_markdown_and_text_pass_the_engine_loader_within_the_models_length(tmp_path):
    from tunesmith.core.models.sources import load_tokenizer

    docx = write_docx(tmp_path / "memo.docx")
    markdown = tmp_path / "notes.md"
    markdown.write_text("# Tides\n\nHigh tide\ncomes twice a day.\n\n- check the chart\n- check the moon\n")
    text = tmp_path / "story.txt"
    text.write_text(("The old sailor told the same story every night by the fire. " * 30).strip() + "\n")
    tokenizer = load_tokenizer("demo")
    max_length = 64
    options = ImportOptions(
        max_tokens=max_length - 1,
        token_counter=lambda t: len(tokenizer(t, add_special_tokens=False).input_ids),
    )
    result = import_files("docs", [docx, markdown, text], options)
    memo = result.rows[0]["text"]
    assert memo.startswith("Harbour opening hours\n\nThe harbour office opens at seven.")
    assert "Monday | 7-16" in memo and "Quarterly memo" not in memo and "Page 1" not in memo
    assert {
        "text": "# Tides\n\nHigh tide comes twice a day.\n\n- check the chart\n- check the moon"
    } in result.rows
    story = [row["text"] for row in result.rows if row["text"].startswith("The old sailor")]
    assert len(story) > 1 and all(chunk.endswith("fire.") for chunk in story)
    out = write_jsonl(result, tmp_path / "docs.jsonl")
    dataset = load_dataset_file(out)
    assert dataset.format == "text" and dataset.usable_rows == len(result.rows) and not dataset.problems
    rendered = [render_example(record.example, tokenizer, max_length) for record in dataset.records]
    assert not any(example.truncated for example in rendered)
    assert max(example.num_tokens for example in rendered) > max_length // 2  # chunks use the room


def test_unreadable_documents_are_refused_with_what_to_do(tmp_path):
    scan = write_pdf(tmp_path / "scan.pdf", handbook_pages(2), text_layer=False)
    with pytest.raises(ImportProblem, match=r"scan\.pdf: this PDF has no text layer.*OCR"):
        read_docs(scan, ImportOptions())
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(write_pdf(tmp_path / "open.pdf", handbook_pages(1))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    writer.write(str(locked))
    with pytest.raises(ImportProblem, match="locked with a password"):
        read_docs(locked, ImportOptions())
    fake = tmp_path / "report.docx"
    fake.write_text("not a zip at all")
    with pytest.raises(ImportProblem, match=r"report\.docx: not a Word \.docx document"):
        read_docs(fake, ImportOptions())
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\u00e9 au lait\n".encode("cp1252"))
    with pytest.raises(ImportProblem, match=r"latin\.txt: line 1: not UTF-8 text.*save it as UTF-8"):
        read_docs(latin, ImportOptions())
    table = tmp_path / "chat.csv"
    table.write_text("time,author,text\n2024-01-01 10:00,Ann,hi\n")
    with pytest.raises(ImportProblem, match=r"chat\.csv: this is not a document; it looks like a table.*csv"):
        read_docs(table, ImportOptions())
