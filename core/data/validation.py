"""Load a dataset file, check every row against its format, and summarise what is usable.

Combines the readers (file types) with the formats (row shapes).  Every broken row becomes a Problem
naming file, line and field; the caller decides whether to skip them (`skip_invalid`) or refuse to
start.  The file is only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.data.formats import FORMATS, RecordError, detect_format, normalize
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

    @property
    def usable_rows(self) -> int:
        return len(self.records)

    def summary(self) -> str:
        broken = self.total_rows - self.usable_rows
        text = f"{self.usable_rows} of {self.total_rows} rows usable ({self.format})"
        return text + (f", {broken} with problems" if broken else "")


class DatasetError(SettingsNamedError):
    """The dataset cannot be used as it is; `problems` lists every broken row.

    A message that points at a setting (skip broken rows) names it as `{data.skip_invalid}`, for the
    interface to word (see SettingsNamedError)."""

    def __init__(self, message: str, problems: list[Problem] | None = None, settings: tuple[str, ...] = ()):
        super().__init__(message, settings)
        self.problems = problems or []


def load_dataset_file(path: str | Path, fmt: str = "auto") -> DatasetFile:
    """Read and check a whole file.  Raises DatasetError only when nothing can be used at all."""
    try:
        rows, problems = read_rows(path)
    except DatasetReadError as exc:
        raise DatasetError(str(exc)) from None
    if fmt == "auto":
        detected = detect_format(row.value for row in rows)
        if detected is None:
            raise DatasetError(
                f"{path}: could not tell the format. Expected fields like instruction/output (Alpaca), "
                "conversations (ShareGPT), messages (OpenAI), text, prompt/chosen/rejected (preference) "
                "or prompt (prompt only); pick the format by hand if yours differs.",
                problems,
            )
        fmt = detected
    elif fmt not in FORMATS:
        raise DatasetError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)} or auto")
    records: list[Record] = []
    for row in rows:
        try:
            records.append(Record(row.line, normalize(row.value, fmt)))
        except RecordError as exc:
            problems.append(Problem(str(path), row.line, exc.field, exc.message))
    problems.sort(key=lambda p: p.line)
    result = DatasetFile(str(path), fmt, records, problems, total_rows=len(rows) + _unparsed(problems, rows))
    if not records:
        raise DatasetError(f"{path}: no usable rows ({len(problems)} problems)", problems)
    return result


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
