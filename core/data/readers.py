"""Read a dataset file into raw rows, each with the line (or row) number a person can look up.

Knows file types (JSONL, JSON, CSV, Parquet, plain text), not dataset formats: a row here is a dict
(or a string for plain text) exactly as stored.  Rows that cannot be parsed become problems with
their line number instead of stopping the read: invalid JSON, a CSV row with more or fewer fields than
the header, bytes that are not UTF-8.  Text is decoded with `surrogateescape`, so a stray Latin-1 byte
spoils only its own row (reported as FILE:LINE) instead of the whole file.  Files are only ever opened
for reading.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
_ENCODING = {"encoding": "utf-8-sig", "errors": "surrogateescape"}


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


def read_rows(path: str | Path) -> tuple[list[RawRow], list[Problem]]:
    text = str(path)
    path = Path(path).expanduser()
    if not path.is_file():
        if _HUB_ID.match(text) and not path.exists():
            return _read_hub(text)
        raise DatasetReadError(f"{path}: no such file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DatasetReadError(
            f"{path}: unsupported file type '{path.suffix}'. Use .jsonl, .json, .csv, .parquet or .txt"
        )
    return _READERS[kind](path)


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


def _read_jsonl(path: Path) -> tuple[list[RawRow], list[Problem]]:
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
                problems.append(
                    Problem(str(path), number, None, f"not valid JSON ({exc.msg}, column {exc.colno})")
                )
    return rows, problems


def _read_json(path: Path) -> tuple[list[RawRow], list[Problem]]:
    text = path.read_text(**_ENCODING)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file holding one object per line is common: read it as JSONL instead.
        if text.lstrip().startswith("{") and "\n" in text.strip():
            return _read_jsonl(path)
        raise DatasetReadError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    undecodable = not_utf8(text, columns=False)
    if undecodable:  # one document: items have no lines of their own, so the file is refused whole
        line = text.count("\n", 0, _UNDECODED.search(text).start()) + 1
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


def _read_csv(path: Path) -> tuple[list[RawRow], list[Problem]]:
    """One row per record; a record whose field count differs from the header's is a problem, not
    silently cut or padded (csv.DictReader would drop the extra values or fill in None)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows, problems = [], []
    with path.open(newline="", **_ENCODING) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return [], []
        for values in reader:
            line = reader.line_num  # the line where this record ended (multi-line cells span lines)
            if not values:
                continue
            if len(values) != len(header):
                problems.append(Problem(str(path), line, None, _field_count(len(values), len(header))))
                continue
            record = dict(zip(header, values, strict=True))
            undecodable = _undecodable_field(record)
            if undecodable:
                problems.append(Problem(str(path), line, *undecodable))
                continue
            rows.append(RawRow(line, record))
    return rows, problems


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


def _read_parquet(path: Path) -> tuple[list[RawRow], list[Problem]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DatasetReadError(f"{path}: not a readable Parquet file ({exc})") from None
    return [RawRow(i, row) for i, row in enumerate(table.to_pylist(), start=1)], []


def _read_text(path: Path) -> tuple[list[RawRow], list[Problem]]:
    """Plain text: blocks separated by blank lines are rows; each row keeps its first line number."""
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
    return rows, problems


_READERS = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "text": _read_text,
}
