"""The `docs` source: PDF, DOCX, Markdown and text files -> plain-text rows {"text": ...} for continued
pre-training, each a run of whole paragraphs that fits the model's max length.

Reads the files (pypdf for PDF, python-docx for DOCX, both imported only when such a file is read) and
hands their lines to doc_text.py, which removes page furniture, finds paragraphs and packs chunks.
A file that cannot be read (encrypted, scanned pictures with no text layer, not really a PDF or a Word
file, a chat export given as a document) raises ImportProblem naming the file and what to do.  The report
counts chunks (as `conversations_*`, which FileReport words as chunks for docs) and the furniture lines
and pictured pages left out.  Files are only read.
"""

from __future__ import annotations

import re
from pathlib import Path

from tunesmith.core.config import DataConfig
from tunesmith.core.data.importers.common import FileReport, ImportOptions, ImportProblem
from tunesmith.core.data.importers.doc_text import (
    chunk_paragraphs,
    paragraphs_of_lines,
    paragraphs_of_text,
    strip_page_furniture,
    words_token_estimate,
)
from tunesmith.core.data.importers.sniff import sniff

SUFFIXES = (".pdf", ".docx", ".md", ".markdown", ".txt")
_RUNS_OF_SPACES = re.compile(r"[ \t]{2,}")


# Chat exports are text files too: given as documents they are refused with the source that reads them.
_CHAT_SOURCES = ("whatsapp", "telegram", "discord", "csv")


class _Unreadable(ValueError):
    """The file holds no text we can read; the message says why and what to do."""


def read_docs(path: Path, options: ImportOptions) -> tuple[list[dict], FileReport]:
    """The file's text as {"text": chunk} rows, and what happened to it; ImportProblem when the file
    cannot be read as a document."""
    path = Path(path)
    report = FileReport(path=str(path), source="docs")
    try:
        paragraphs = _paragraphs(path, report)
    except _Unreadable as exc:
        raise ImportProblem(f"{path}: {exc}") from None
    # The CLI and the app pass the chosen model's tokenizer; without one, a words-based estimate that
    # errs on the long side (so a chunk may use less of the limit than it could, never more).  The
    # default limit is the engine's default max length less the end-of-text token it adds to text rows.
    count = options.token_counter or words_token_estimate
    max_tokens = options.max_tokens or DataConfig().max_length - 1
    rows = [{"text": chunk} for chunk in chunk_paragraphs(paragraphs, max_tokens, count)]
    if not rows:
        raise ImportProblem(f"{path}: no text in this file. Is it the document you meant?")
    report.conversations_read = report.conversations_kept = len(rows)
    return rows, report


def not_a_document(path: Path, report: FileReport | None = None) -> ImportProblem | None:
    """The refusal for a file that is not a document (a chat export, a table, JSON), saying what it looks
    like and which source reads it; None for a document.  Looks at the name and the first bytes only."""
    from tunesmith.core.data.importers.sniff import wrong_format

    suffix = path.suffix.lower()
    if suffix not in (".pdf", ".docx", ".doc") and (suffix not in SUFFIXES or sniff(path) in _CHAT_SOURCES):
        return wrong_format(path, "docs", report)
    return None


def _paragraphs(path: Path, report: FileReport) -> list[str]:
    if not path.is_file():
        raise _Unreadable("is a folder; give the documents inside it" if path.is_dir() else "no such file")
    refusal = not_a_document(path, report)
    if refusal is not None:
        raise refusal
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _pdf_paragraphs(path, report)
    if suffix == ".docx":
        return _docx_paragraphs(path)
    if suffix == ".doc":
        raise _Unreadable("an old Word .doc file: open it in Word or LibreOffice and save it as .docx")
    return paragraphs_of_text(_plain_text(path))


def _pdf_paragraphs(path: Path, report: FileReport) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        locked = reader.is_encrypted and not _unlocked(reader)
        pages = [] if locked else [_page_lines(page) for page in reader.pages]
    except (PdfReadError, OSError, KeyError, TypeError, ValueError) as exc:
        raise _Unreadable(f"not a readable PDF ({exc}). Open it in a PDF viewer and save it again.") from None
    if locked:
        raise _Unreadable(
            "this PDF is locked with a password. Open it with the password and save an unlocked copy "
            "(Print to PDF does it), then import that copy."
        )
    empty = sum(1 for lines in pages if not any(line.strip() for line in lines))
    if pages and empty == len(pages):
        raise _Unreadable(
            "this PDF has no text layer: its pages are pictures (a scan). Run it through OCR first (for "
            "example ocrmypdf, or your scanner's 'searchable PDF' option), then import the result."
        )
    report.skip("pages with no text (pictures of pages; OCR the PDF to include them)", empty)
    pages, removed = strip_page_furniture(pages)
    report.skip("header, footer and page-number lines repeated across the pages", removed)
    # Pages run on into each other: a paragraph may continue on the next page.
    return paragraphs_of_lines([line for lines in pages for line in lines])


def _unlocked(reader) -> bool:
    """Many PDFs are encrypted only against editing, with an empty password for reading."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - pypdf raises several kinds (missing crypto backend, bad key)
        return False


def _page_lines(page) -> list[str]:
    """A page's lines; the layout mode keeps vertical gaps as blank lines, which end paragraphs."""
    try:
        text = page.extract_text(extraction_mode="layout")
    except Exception:  # noqa: BLE001 - layout mode fails on some fonts; the plain mode still reads them
        text = page.extract_text() or ""
    # Layout mode pads with spaces to place words where they stand on the page.
    return [_RUNS_OF_SPACES.sub(" ", line).strip() for line in text.splitlines()]


def _docx_paragraphs(path: Path) -> list[str]:
    """Body paragraphs and table rows in document order; headers and footers live apart in a DOCX and
    are not read at all."""
    import zipfile

    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError):
        raise _Unreadable(
            "not a Word .docx document (a .docx is a zip archive; this file is not one). Save it from Word "
            "or LibreOffice as .docx and try again."
        ) from None
    paragraphs = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [cell.text.strip() for cell in row.cells]
                if any(cells):
                    paragraphs.append(" | ".join(cells))
        elif block.text.strip():
            paragraphs.append(block.text.strip())
    return paragraphs


def _plain_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise _Unreadable("this is not a text file (it holds binary data). Choose the document itself.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # Refused rather than guessed: a wrong guess garbles every accented letter the model learns from.
        line = data.count(b"\n", 0, exc.start) + 1
        raise _Unreadable(
            f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02X}; the file was probably saved as "
            "Latin-1 or Windows-1252): save it as UTF-8 (in Notepad: Save as, Encoding: UTF-8)"
        ) from None
