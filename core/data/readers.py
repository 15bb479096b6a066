"""Read a dataset file into raw rows, each with the line (or row) number a person can look up.

Knows file types (JSONL, JSON, CSV, Parquet, plain text), not dataset formats: a row here is a dict
(or a string for plain text) exactly as stored.  Rows that cannot be parsed become problems with
their line number instead of stopping the read: invalid JSON, a CSV row with more or fewer fields than
the header, bytes that are not UTF-8.  Text is decoded with `surrogateescape`, so a stray Latin-1 byte
spoils only its own row (reported as FILE:LINE) instead of the whole file.  Files are only ever opened
for reading.

Every message says what is wrong in the user's terms and what to do, at the line where the trouble
starts: a JSON line cut off mid-record, a CSV quote that is never closed (reported where it opens, not
where the reader finally stopped), an empty file, a picture or other binary file given a text suffix.
What is worth a word but is not an error (a CSV value that swallowed lines looking like rows of their
own) goes to the caller's `notes`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".md": "text",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# What `surrogateescape` turns an undecodable byte into: U+DC80..U+DCFF stand for bytes 0x80..0xFF.
_UNDECODED = re.compile("[\udc80-\udcff]")


class _Encoding(TypedDict):
    encoding: str
    errors: str


_ENCODING = _Encoding(encoding="utf-8-sig", errors="surrogateescape")


@dataclass(frozen=True)
class RawRow:
    line: int  # 1-based line in the file (JSONL, text, CSV) or 1-based item/row number (JSON, Parquet)
    value: Any


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f" field '{self.field}':" if self.field else ""
        return f"{self.file}:{self.line}:{where} {self.message}"


class DatasetReadError(ValueError):
    """The whole file cannot be read (missing, wrong type, not decodable)."""


def read_rows(path: str | Path, notes: list[str] | None = None) -> tuple[list[RawRow], list[Problem]]:
    """The file's rows and its unparsable rows; remarks that are not errors are appended to `notes`."""
    text = str(path)
    path = Path(path).expanduser()
    if not path.is_file():
        if _HUB_ID.match(text) and not path.exists():
            return _read_hub(text)
        if path.is_dir():
            raise DatasetReadError(f"{path}: this is a folder; choose the dataset file inside it")
        raise DatasetReadError(f"{path}: no such file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DatasetReadError(
            f"{path}: unsupported file type '{path.suffix}'. Use .jsonl, .json, .csv, .parquet or .txt"
        )
    _refuse_unusable_file(path, kind)
    return _READERS[kind](path, notes if notes is not None else [])


# The first bytes of files people rename by mistake, and what they are in words.
_MAGIC = {
    b"\x89PNG": "a PNG picture",
    b"\xff\xd8\xff": "a JPEG picture",
    b"GIF8": "a GIF picture",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx or Word .docx file is one: save it as CSV instead)",
    b"PAR1": "a Parquet file (give it the .parquet suffix)",
    b"\x1f\x8b": "a gzip-compressed file (unpack it first)",
    b"SQLite format 3": "an SQLite database",
}


def _refuse_unusable_file(path: Path, kind: str) -> None:
    """An empty file, or a binary one under a text suffix, is refused whole with what it is."""
    with path.open("rb") as handle:
        head = handle.read(8192)
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):  # nothing but blanks (or a byte-order mark)
        raise DatasetReadError(
            f"{path}: the file is empty. Choose the file that holds your examples, or save this one "
            "again from the program that made it."
        )
    if kind == "parquet":
        return
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetReadError(
            f"{path}: saved as UTF-16 text; save it as UTF-8 (in Notepad: Save as, Encoding: UTF-8)"
        )
    what = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    if what is None and b"\x00" in head:  # text never holds NUL bytes
        what = "a binary file"
    if what is not None:
        raise DatasetReadError(
            f"{path}: this is not a text file: it looks like {what}, renamed to '{path.suffix}'. "
            "Choose the dataset file itself (JSONL, JSON, CSV, Parquet or plain text)."
        )


def not_utf8(text: str, columns: bool = True) -> str | None:
    """What to tell the user when `text` holds bytes that were not UTF-8, else None."""
    found = _UNDECODED.search(text)
    if found is None:
        return None
    where = f" at column {found.start() + 1}" if columns else ""
    return (
        f"not UTF-8 text (byte 0x{ord(found.group()) - 0xDC00:02X}{where}; the file was probably saved "
        "as Latin-1 or Windows-1252): save it as UTF-8"
    )


def _undecodable_field(record: dict[str, str]) -> tuple[str | None, str] | None:
    """(field, message) for the first header or value of a CSV row with non-UTF-8 bytes."""
    for key, value in record.items():
        for text, field in ((key, None), (value, key)):
            message = not_utf8(text, columns=False)
            if message:
                return field, message
    return None


def _read_hub(dataset_id: str) -> tuple[list[RawRow], list[Problem]]:
    """A hub dataset's train split (downloaded once by `datasets`, then read from its cache)."""
    import os

    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DatasetReadError(
            f"{dataset_id}: no such file, and hub datasets cannot be fetched offline. Download it "
            "while online, or export it to a .jsonl file and pick that."
        )
    from datasets import load_dataset

    try:
        data = load_dataset(dataset_id, split="train")
    except Exception as exc:
        raise DatasetReadError(f"{dataset_id}: could not load this hub dataset ({exc})") from None
    return [RawRow(i, row) for i, row in enumerate(data, start=1)], []


def _read_jsonl(path: Path, notes: list[str]) -> tuple[list[RawRow], list[Problem]]:
    rows, problems = [], []
    with path.open(**_ENCODING) as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            undecodable = not_utf8(text)
            if undecodable:
                problems.append(Problem(str(path), number, None, undecodable))
                continue
            try:
                rows.append(RawRow(number, json.loads(text)))
            except json.JSONDecodeError as exc:
                problems.append(Problem(str(path), number, None, json_problem(exc)))
    return rows, problems


def json_problem(exc: json.JSONDecodeError) -> str:
    """What a JSON parse error means for the person who wrote the line, and what to do."""
    at = f"column {exc.colno}"
    if exc.msg.startswith(("Unterminated string", "Invalid control character")):
        words = (
            f"a text value (in quotes) is not closed by the end of the line ({at}): the line is cut off, "
            "or a line break inside a text must be written as \\n. Complete or remove this line"
        )
    elif exc.msg.startswith("Expecting property name"):
        words = (
            f"expected a field name in double quotes at {at}: JSON takes \"double\" quotes, not 'single' "
            "ones, and no comma before a closing }"
        )
    elif exc.msg.startswith("Extra data"):
        words = f"more than one record on this line (the second starts at {at}): put each on its own line"
    elif exc.msg.startswith("Expecting value") and exc.pos == 0:
        words = "this line is not a JSON record: each line must be one {...} object"
    elif exc.msg.startswith(("Expecting ',' delimiter", "Expecting value", "Expecting ':' delimiter")):
        words = (
            f"the record stops or breaks off at {at} (a missing comma, quote or value, or a line cut "
            "off): complete or remove this line"
        )
    else:
        words = f"{exc.msg} at {at}"
    return f"not valid JSON: {words}"


def _read_json(path: Path, notes: list[str]) -> tuple[list[RawRow], list[Problem]]:
    text = path.read_text(**_ENCODING)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file holding one object per line is common: read it as JSONL instead.
        if text.lstrip().startswith("{") and "\n" in text.strip():
            return _read_jsonl(path, notes)
        raise DatasetReadError(f"{path}:{exc.lineno}: {json_problem(exc)}") from None
    undecodable = not_utf8(text, columns=False)
    if undecodable:  # one document: items have no lines of their own, so the file is refused whole
        found = _UNDECODED.search(text)
        assert found is not None  # not_utf8 saw an undecodable byte
        line = text.count("\n", 0, found.start()) + 1
        raise DatasetReadError(f"{path}:{line}: {undecodable}")
    if isinstance(data, dict):
        # {"data": [...]} or {"train": [...]} wrappers: take the single list inside.
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DatasetReadError(f"{path}: expected a list of records at the top level")
        data = lists[0]
    if not isinstance(data, list):
        raise DatasetReadError(f"{path}: expected a list of records at the top level")
    return [RawRow(i, item) for i, item in enumerate(data, start=1)], []


def _read_csv(path: Path, notes: list[str]) -> tuple[list[RawRow], list[Problem]]:
    """One row per record, numbered by the line it starts on (a quoted value may span lines).

    A record whose field count differs from the header's is a problem, not silently cut or padded
    (csv.DictReader would drop the extra values or fill in None).  A quote that is never closed swallows
    the rest of the file into one value: that record is a problem at the line the quote opens.  A quoted
    value that spans lines which look like rows of their own is kept, with a note, since a real value
    may hold line breaks and commas."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows, problems = [], []
    with path.open(newline="", **_ENCODING) as handle:
        lines = handle.read().splitlines(keepends=True)
    consumed: list[str] = []  # the raw lines of the record being read

    def feed():
        for text in lines:
            consumed.append(text)
            yield text

    reader = csv.reader(feed(), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return [], []
    header_count = len(header)
    consumed.clear()
    for values in reader:
        end = reader.line_num
        raw, consumed[:] = list(consumed), []
        start = end - len(raw) + 1
        if not values:
            continue
        if len(raw) > 1 and end == len(lines) and "".join(raw).count('"') % 2:
            problems.append(Problem(str(path), start, None, _unclosed_quote(start, end)))
            continue
        if len(values) != header_count:
            problems.append(Problem(str(path), start, None, _field_count(len(values), header_count)))
            continue
        record = dict(zip(header, values, strict=True))
        undecodable = _undecodable_field(record)
        if undecodable:
            problems.append(Problem(str(path), start, *undecodable))
            continue
        rows.append(RawRow(start, record))
        swallowed = _row_like_lines(raw[1:], delimiter, header_count)
        if swallowed:
            notes.append(
                f"{path}:{start}: the quoted value that opens on line {start} runs on to line {end}, and "
                f"line {start + swallowed} inside it looks like a row of its own. If it is one, close the quote on "
                f'line {start} (a quote inside a value is written twice: "").'
            )
    return rows, problems


def _unclosed_quote(start: int, end: int) -> str:
    return (
        f"a double quote opened on this line is never closed, so lines {start}-{end} (the rest of the "
        'file) were read as one value: close the quote (a quote inside a value is written twice: "")'
        "; this row is left out"
    )


def _row_like_lines(inside: list[str], delimiter: str, header_count: int) -> int | None:
    """The first line number (relative: 1 = the line after the record's first) of a line inside a
    multi-line value that would parse, alone, into exactly as many fields as the header has."""
    if header_count < 2:
        return None
    for offset, text in enumerate(inside, start=1):
        fields = next(csv.reader([text.rstrip("\r\n").rstrip('"')], delimiter=delimiter), [])
        if len(fields) == header_count and all(field.strip() for field in fields):
            return offset
    return None


def _field_count(found: int, expected: int) -> str:
    more = found > expected
    return (
        f"{found} fields, but the header (line 1) has {expected}: "
        + (
            "a value holding a comma must be in double quotes"
            if more
            else "a field is missing (leave it empty between two commas if it has no value)"
        )
        + "; this row is left out"
    )


def _read_parquet(path: Path, notes: list[str]) -> tuple[list[RawRow], list[Problem]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DatasetReadError(f"{path}: not a readable Parquet file ({exc})") from None
    return [RawRow(i, row) for i, row in enumerate(table.to_pylist(), start=1)], []


def _read_text(path: Path, notes: list[str]) -> tuple[list[RawRow], list[Problem]]:
    """Plain text: blocks separated by blank lines are rows; each row keeps its first line number.
    A file with no blank line is one example: the notes say so, and what the user may want instead."""
    rows: list[RawRow] = []
    problems: list[Problem] = []
    block: list[str] = []
    start, spoiled = 0, False
    lines = path.read_text(**_ENCODING).splitlines()
    for number, line in enumerate(lines + [""], start=1):
        if line.strip():
            if not block:
                start, spoiled = number, False
            block.append(line)
            undecodable = not_utf8(line)
            if undecodable and not spoiled:  # the whole block is left out, reported at this line
                problems.append(Problem(str(path), number, None, undecodable))
                spoiled = True
        elif block:
            if not spoiled:
                rows.append(RawRow(start, {"text": "\n".join(block)}))
            block = []
    if len(rows) == 1 and not problems and len(lines) > 1:
        notes.append(
            f"{path}: plain text is split into examples at blank lines, and this file has none, so all "
            f"{len(lines)} lines are one example. The model learns to continue text like it, not to answer "
            "questions. Put a blank line between examples, or, to teach answers, use a CSV or JSONL file "
            "with question and answer columns."
        )
    return rows, problems


_READERS: dict[str, Callable[[Path, list[str]], tuple[list[RawRow], list[Problem]]]] = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "text": _read_text,
}
