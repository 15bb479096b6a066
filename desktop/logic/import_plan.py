"""The Import wizard's decisions, without Qt: which source the chosen files are, who speaks in them, a
CSV's columns, where the new dataset goes, and the import itself (run on a background thread by the
wizard).

Knows the importers' API (core.data.importers) and file names; nothing of widgets.  Nothing is ever
overwritten: the destination offered is a new name, and the import refuses an existing file.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.data.importers import SOURCES, ImportOptions, ImportProblem, ImportResult, sniff

CSV_ROLES = ("time", "author", "text")
DATASETS_FOLDER = "datasets"  # beside the runs folder: ~/Tunesmith/runs and ~/Tunesmith/datasets


@dataclass
class FilesScan:
    """What a quick read of the chosen files found: the speakers (chats), a CSV's header, or the reason
    they cannot be imported as the chosen source (`problem`, in words: what they look like instead)."""

    speakers: dict[str, int] = field(default_factory=dict)  # name -> messages, most first
    columns: list[str] = field(default_factory=list)  # a CSV's header
    problem: str = ""


def guess_source(paths: Sequence[str | Path]) -> str | None:
    """The source all the files look like (sniffed from their first bytes), or None when they differ
    or none is recognised."""
    guesses = {sniff(path) for path in paths}
    return guesses.pop() if len(guesses) == 1 else None


def source_label(source: str) -> str:
    return f"{source}: {SOURCES[source]}"


def scan_files(
    source: str, paths: Sequence[str | Path], csv_columns: dict[str, str] | None = None
) -> FilesScan:
    """Read the files as `source` far enough to know who speaks (or why they cannot be read).

    The importers name the speakers when "me" is missing, so an import without "me" is the scan; a
    file that reads fine with no speaker at all is the importers' to refuse later."""
    from tunesmith.core.data.importers import import_files

    scan = FilesScan()
    if source == "csv":
        try:
            scan.columns = csv_header(paths[0])
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            scan.problem = f"{paths[0]}: cannot read the table's header ({exc})"
            return scan
        guessed = guess_csv_columns(scan.columns)
        if csv_columns is None and not (guessed["author"] and guessed["text"]):
            return scan  # the person names the columns next; the speakers are read then
    if source == "docs":  # read only when imported (a long PDF takes a while): the names and first bytes tell
        from tunesmith.core.data.importers.docs import not_a_document

        refusal = next((r for r in (not_a_document(Path(p)) for p in paths) if r is not None), None)
        scan.problem = str(refusal or "")
        return scan
    try:
        import_files(source, list(paths), ImportOptions(csv_columns=csv_columns))
    except ImportProblem as exc:
        if exc.speakers:
            scan.speakers = dict(Counter(exc.speakers).most_common())
        else:
            scan.problem = str(exc)
    return scan


def csv_header(path: str | Path) -> list[str]:
    """A table's column names, its delimiter sniffed as the csv importer does."""
    text = Path(path).read_bytes()[:65536].decode("utf-8-sig", errors="replace")
    if Path(path).suffix.lower() == ".tsv":
        dialect: type[csv.Dialect] | csv.Dialect = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    first = next(csv.reader(text.splitlines()[:1], dialect=dialect), [])
    return [name.strip() for name in first if name.strip()]


def guess_csv_columns(header: list[str]) -> dict[str, str]:
    """role -> column by the common names the csv importer knows ("" when none matches)."""
    from tunesmith.core.data.importers.csv_table import COMMON_NAMES

    lowered = {name.casefold(): name for name in header}
    return {
        role: next((lowered[name] for name in COMMON_NAMES[role] if name in lowered), "")
        for role in CSV_ROLES
    }


def offered_csv_columns(header: list[str]) -> dict[str, str]:
    """The columns the wizard shows first: the common names where found, else the usual order of such
    tables (time, author, text) among the columns not taken."""
    chosen = guess_csv_columns(header)
    free = [name for name in header if name not in chosen.values()]
    for role in CSV_ROLES:
        if not chosen[role] and free and len(header) >= len(CSV_ROLES):
            chosen[role] = free.pop(0)
    return chosen


def default_output(runs_dir: str | Path, source: str, paths: Sequence[str | Path]) -> Path:
    """A new file in the datasets folder beside the runs folder, named after the first file and the time;
    never an existing one."""
    folder = Path(runs_dir).expanduser().resolve().parent / DATASETS_FOLDER
    stem = f"{source}-{_slug(Path(paths[0]).stem) if paths else 'import'}-{time.strftime('%Y%m%d-%H%M')}"
    for number in range(1, 1000):
        candidate = folder / (f"{stem}.jsonl" if number == 1 else f"{stem}-{number}.jsonl")
        if not candidate.exists():
            return candidate
    raise ImportProblem(f"{folder}: too many imports with the name {stem}; choose a file name")


def _slug(text: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
    return "-".join(part for part in kept.split("-") if part)[:40] or "import"


def output_problem(out: str | Path, inputs: Sequence[str | Path]) -> str:
    """Why the chosen destination cannot be written ("" when it can)."""
    path = Path(out).expanduser()
    if not str(out).strip():
        return "Choose where to write the new dataset."
    if path.suffix.lower() != ".jsonl":
        return "Give the new dataset a .jsonl name."
    if path.exists():
        return f"{path.name} already exists; choose a new name (an import never overwrites a file)."
    if any(Path(p).expanduser().resolve() == path.resolve() for p in inputs):
        return "That is one of the files to import; choose a new file."
    return ""


@dataclass
class ImportDone:
    result: ImportResult
    written: Path
    note: str = ""  # worth a word: documents sized by a word estimate when the tokenizer did not load

    def summary(self) -> str:
        note = f"\n{self.note}" if self.note else ""
        return f"{self.result.summary()}{note}\n\nWritten to {self.written}."


def run_import(
    source: str,
    paths: Sequence[str | Path],
    options: ImportOptions,
    out: str | Path,
    token_counter_of: Callable[[], Callable[[str], int]] | None = None,
) -> ImportDone:
    """Import the files and write the new dataset (never overwriting); ImportProblem says why not.
    `token_counter_of` loads the model's tokenizer for documents (only they need it); when it cannot,
    the chunks are sized by a word estimate and the note says so."""
    from dataclasses import replace

    from tunesmith.core.data.importers import import_files, write_jsonl

    out = Path(out).expanduser()
    problem = output_problem(out, paths)
    if problem:
        raise ImportProblem(problem)
    note = ""
    if source == "docs" and token_counter_of is not None:
        try:
            options = replace(options, token_counter=token_counter_of())
        except Exception as exc:  # noqa: BLE001 - a model that will not load must not stop an import
            note = f"Chunk sizes were estimated from word counts: the model's tokenizer did not load ({exc})."
    result = import_files(source, list(paths), options)
    out.parent.mkdir(parents=True, exist_ok=True)
    return ImportDone(result, write_jsonl(result, out, overwrite=False), note)


def model_token_counter(model_source: str) -> Callable[[str], int]:
    """Tokens as the model's tokenizer counts them (no special tokens: the engine adds those)."""
    from tunesmith.core.heavy_imports import import_heavy
    from tunesmith.core.models.sources import load_tokenizer

    import_heavy()  # transformers imported once, even when another background job imports it too
    tokenizer = load_tokenizer(model_source)
    return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)
