"""Read a dataset file into raw rows, each with the line (or row) number a person can look up.

Knows file types (JSONL, JSON, CSV, Parquet, plain text), not dataset formats: a row here is a dict
(or a string for plain text) exactly as stored.  Rows that cannot be parsed become problems with
their line number instead of stopping the read.  Files are only ever opened for reading.
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
    try:
        return _READERS[kind](path)
    except UnicodeDecodeError as exc:
        raise DatasetReadError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


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
    with path.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                rows.append(RawRow(number, json.loads(text)))
            except json.JSONDecodeError as exc:
                problems.append(
                    Problem(str(path), number, None, f"not valid JSON ({exc.msg}, column {exc.colno})")
                )
    return rows, problems


def _read_json(path: Path) -> tuple[list[RawRow], list[Problem]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file holding one object per line is common: read it as JSONL instead.
        if text.lstrip().startswith("{") and "\n" in text.strip():
            return _read_jsonl(path)
        raise DatasetReadError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
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
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for record in reader:
            # line_num is the file line where this record ended (multi-line cells span lines).
            rows.append(RawRow(reader.line_num, {k: v for k, v in record.items() if k is not None}))
    return rows, []


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
    block: list[str] = []
    start = 0
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    for number, line in enumerate(lines + [""], start=1):
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            rows.append(RawRow(start, {"text": "\n".join(block)}))
            block = []
    return rows, []


_READERS = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "text": _read_text,
}
