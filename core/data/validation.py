"""Load a dataset file, check every row against its format, and summarise what is usable.

Combines the readers (file types) with the formats (row shapes).  Every broken row becomes a Problem
naming file, line and field; the caller decides whether to skip them (`skip_invalid`) or refuse to
start.  The file is only read.

When the format cannot be told, the message lists the columns the file has, so the user can say which
holds the question and which the answer (`columns`, "question=COL,answer=COL"); DatasetError carries
them too, for the app's column step.  Remarks that are not errors (a prose .txt read as one example) are
the DatasetFile's `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.data.formats import (
    COLUMN_ROLES,
    FORMATS,
    RecordError,
    detect_columns,
    detect_format,
    normalize,
    parse_columns,
)
from tunesmith.core.data.readers import DatasetReadError, Problem, read_rows
from tunesmith.core.settings import SettingsNamedError


@dataclass(frozen=True)
class Record:
    line: int
    example: dict[str, Any]  # canonical form (see formats.py)


@dataclass
class DatasetFile:
    path: str
    format: str
    records: list[Record]
    problems: list[Problem] = field(default_factory=list)
    total_rows: int = 0
    notes: list[str] = field(default_factory=list)  # worth a word, not errors (see readers.read_rows)
    columns: dict[str, str] = field(default_factory=dict)  # an alpaca file's question/answer columns
    fields: list[str] = field(default_factory=list)  # the field names its rows have (first rows)

    @property
    def usable_rows(self) -> int:
        return len(self.records)

    def summary(self) -> str:
        broken = self.total_rows - self.usable_rows
        named = ""
        if self.columns and self.columns.get("question") != "instruction":  # not Alpaca's own names
            named = (
                f": question column '{self.columns['question']}', answer column '{self.columns['answer']}'"
            )
        text = f"{self.usable_rows} of {self.total_rows} rows usable ({self.format}{named})"
        return text + (f", {broken} with problems" if broken else "")


class DatasetError(SettingsNamedError):
    """The dataset cannot be used as it is; `problems` lists every broken row.

    A message that points at a setting (skip broken rows) names it as `{data.skip_invalid}`, for the
    interface to word (see SettingsNamedError)."""

    def __init__(
        self,
        message: str,
        problems: list[Problem] | None = None,
        settings: tuple[str, ...] = (),
        columns: list[str] | None = None,
    ):
        super().__init__(message, settings)
        self.problems = problems or []
        self.columns = columns or []  # the file's columns, when naming two of them would help


def load_dataset_file(path: str | Path, fmt: str = "auto", columns: str | dict[str, str] = "") -> DatasetFile:
    """Read and check a whole file.  Raises DatasetError only when nothing can be used at all.

    `columns` ("question=COL,answer=COL") names the question and answer columns of a one-exchange table
    whose names are not the common ones; it makes the format alpaca."""
    try:
        mapping = parse_columns(columns) if isinstance(columns, str) else dict(columns)
    except ValueError as exc:
        raise DatasetError(f"question/answer columns: {exc}", settings=("data.columns",)) from None
    notes: list[str] = []
    try:
        rows, problems = read_rows(path, notes)
    except DatasetReadError as exc:
        raise DatasetError(str(exc)) from None
    found = _columns_found(rows)
    if mapping:
        missing = [mapping[role] for role in COLUMN_ROLES if mapping[role] not in found]
        if missing and found:
            raise DatasetError(
                f"{path}: no column named {' or '.join(repr(m) for m in missing)}; its columns are "
                f"{', '.join(found)}. Choose the question and answer columns again.",
                problems,
                columns=found,
            )
        fmt = "alpaca"
    elif fmt == "auto":
        detected = detect_format(row.value for row in rows)
        if detected is None:
            raise DatasetError(_undetected(path, rows, found), problems, columns=found)
        fmt = detected
    elif fmt not in FORMATS:
        raise DatasetError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)} or auto")
    if fmt == "alpaca" and not mapping:
        mapping = detect_columns(row.value for row in rows) or {"question": "instruction", "answer": "output"}
    records: list[Record] = []
    for row in rows:
        try:
            records.append(Record(row.line, normalize(row.value, fmt, mapping or None)))
        except RecordError as exc:
            problems.append(Problem(str(path), row.line, exc.field, exc.message))
    problems.sort(key=lambda p: p.line)
    result = DatasetFile(
        str(path),
        fmt,
        records,
        problems,
        total_rows=len(rows) + _unparsed(problems, rows),
        notes=notes,
        columns=mapping if fmt == "alpaca" else {},
        fields=found,
    )
    if not records:
        raise DatasetError(_nothing_usable(path, fmt, problems, found), problems, columns=found)
    return result


def _columns_found(rows: list) -> list[str]:
    """The field names of the first rows, in the order they first appear."""
    found: dict[str, None] = {}
    for row in rows[:50]:
        if isinstance(row.value, dict):
            found.update(dict.fromkeys(str(key) for key in row.value))
    return list(found)


# How to name the columns on the command line; the app, which asks in the Dataset tab, leaves it out.
CLI_COLUMNS = " (on the command line: --columns question=COLUMN,answer=COLUMN)"
_NAME_THE_COLUMNS = (
    f"Say which column holds the question and which the answer{CLI_COLUMNS}, or rename them question and "
    "answer."
)


def _undetected(path: str | Path, rows: list, found: list[str]) -> str:
    if not rows:
        return f"{path}: no rows in this file (only blank lines or a header). Add your examples to it."
    if not found:
        kind = {"str": "plain text", "list": "a list", "int": "a number", "float": "a number"}.get(
            type(rows[0].value).__name__, "not a record"
        )
        return (
            f"{path}: the rows are not records with named fields (the first is {kind}). Each row must be "
            'an object such as {"question": "...", "answer": "..."}.'
        )
    return (
        f"{path}: could not tell which columns hold the questions and the answers. Its columns are: "
        f"{', '.join(found)}. " + _NAME_THE_COLUMNS
    )


def _nothing_usable(path: str | Path, fmt: str, problems: list[Problem], found: list[str]) -> str:
    text = f"{path}: no usable rows as {fmt} ({len(problems)} problem{'s' if len(problems) != 1 else ''}"
    text += ", each listed with its line)" if problems else ")"
    if found:
        text += f". Its columns are: {', '.join(found)}"
        text += f". {_NAME_THE_COLUMNS}" if fmt == "alpaca" else "; is that the right format?"
    return text


def require_clean(dataset: DatasetFile, skip_invalid: bool) -> DatasetFile:
    """Refuse a dataset with broken rows unless the user allowed skipping them."""
    if dataset.problems and not skip_invalid:
        raise DatasetError(
            f"{dataset.path}: {len(dataset.problems)} broken row(s); fix them, or allow skipping broken "
            f"rows ({{data.skip_invalid}}) to train on the {dataset.usable_rows} good ones.",
            dataset.problems,
            ("data.skip_invalid",),
        )
    return dataset


def _unparsed(problems: list[Problem], rows: list) -> int:
    """Rows that failed to parse never became RawRows, but they are rows the user wrote."""
    parsed_lines = {row.line for row in rows}
    return sum(1 for p in problems if p.line not in parsed_lines)
