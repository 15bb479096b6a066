"""Import the files people have (chat exports, documents) into a training dataset, offline.

`import_files(source, paths, options)` reads each file with its source's reader, turns chats into
OpenAI-style `messages` conversations (`conversations.py`), scrubs personal data when asked (`scrub.py`),
drops exact and near duplicates (`dedup.py`) and reports per file what was read, kept and skipped.
`write_jsonl` writes the rows atomically to a new file.  Nothing here leaves the machine.

Readers: `whatsapp`, `telegram`, `discord`, `csv_table` each give `read_chats(path, options, report) ->
list[Chat]`; `docs` (documents to plain-text chunks) gives `read_docs(path, options) -> (rows, report)`.
Each is imported only when used, so `tunesmith --help` stays instant.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tunesmith.core.data.importers.common import (
    Chat,
    FileReport,
    ImportOptions,
    ImportProblem,
    ImportResult,
)
from tunesmith.core.data.importers.sniff import sniff

SOURCES: dict[str, str] = {
    "whatsapp": "WhatsApp 'Export chat' file (.txt, or the .zip the phone makes), Android or iPhone",
    "telegram": "Telegram Desktop's JSON export (result.json: one chat or all chats)",
    "discord": "DiscordChatExporter's JSON export of a channel or direct messages",
    "csv": "Any table of messages with a time, an author and a text column (.csv / .tsv)",
    "docs": "Documents (PDF, DOCX, Markdown, text) as plain-text chunks for continued pre-training",
}
# The module in this package that reads each chat source.
_CHAT_READERS = {"whatsapp": "whatsapp", "telegram": "telegram", "discord": "discord", "csv": "csv_table"}

__all__ = [
    "SOURCES",
    "FileReport",
    "ImportOptions",
    "ImportProblem",
    "ImportResult",
    "import_files",
    "sniff",
    "write_jsonl",
]


def import_files(source: str, paths: Sequence[str | Path], options: ImportOptions) -> ImportResult:
    """Read every file of one source into rows.  ImportProblem when nothing can be kept (with the reasons),
    when `me` is missing for chats, or when the only file is refused."""
    if source not in SOURCES:
        raise ImportProblem(f"unknown source '{source}': use one of {', '.join(SOURCES)}")
    if not paths:
        raise ImportProblem(f"no files given to import as {source}")
    if source == "docs":
        rows, reports = _read_docs(paths, options)
    else:
        rows, reports = _read_chat_files(source, paths, options)
    return _finish(rows, reports, options)


def _read_docs(paths: Sequence[str | Path], options: ImportOptions) -> tuple[list[dict], list[FileReport]]:
    docs = importlib.import_module("tunesmith.core.data.importers.docs")
    rows: list[dict] = []
    reports: list[FileReport] = []
    for path in paths:
        try:
            file_rows, report = docs.read_docs(Path(path), options)
        except ImportProblem as exc:
            _refuse_or_raise(paths, path, "docs", exc, reports)
            continue
        rows += file_rows
        reports.append(report)
    return rows, reports


def _read_chat_files(
    source: str, paths: Sequence[str | Path], options: ImportOptions
) -> tuple[list[dict], list[FileReport]]:
    from tunesmith.core.data.importers.conversations import check_me, to_conversations

    reader = importlib.import_module(f"tunesmith.core.data.importers.{_CHAT_READERS[source]}")
    per_file: list[tuple[list[Chat], FileReport]] = []
    reports: list[FileReport] = []
    for path in paths:
        report = FileReport(str(path), source)
        try:
            _check_readable(Path(path))
            chats = reader.read_chats(Path(path), options, report)
        except OSError as exc:  # unreadable (permissions, a disk error, a zip member that fails)
            problem = ImportProblem(f"{path}: cannot be read ({exc.strerror or exc})")
            _refuse_or_raise(paths, path, source, problem, reports)
            continue
        except ImportProblem as exc:
            _refuse_or_raise(paths, path, source, exc, reports)
            continue
        report.speakers = dict(sum((chat.speakers() for chat in chats), Counter()))
        per_file.append((chats, report))
        reports.append(report)
    speakers: Counter[str] = sum((Counter(report.speakers) for _, report in per_file), Counter())
    names = {
        name
        for chats, _ in per_file
        for chat in chats
        for message in chat.messages
        for name in (message.author, *message.aliases)
    }
    if per_file:
        check_me(options.me, speakers, names, [report.path for _, report in per_file])
    rows: list[dict] = []
    for chats, report in per_file:
        rows += to_conversations(chats, options, report)
    return rows, reports


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ImportProblem(f"{path}: no such file")
    if path.is_dir():
        raise ImportProblem(f"{path}: is a folder; give the export file inside it")


def _refuse_or_raise(
    paths: Sequence[str | Path], path: str | Path, source: str, exc: ImportProblem, reports: list[FileReport]
) -> None:
    """One file of several that cannot be read is reported and the others go on; a single one stops."""
    if len(paths) == 1:
        raise exc
    reports.append(FileReport(str(path), source, refused=str(exc)))


def _finish(rows: list[dict], reports: list[FileReport], options: ImportOptions) -> ImportResult:
    from tunesmith.core.data.importers.dedup import drop_duplicates
    from tunesmith.core.data.importers.scrub import Scrubber

    scrubbed: dict[str, int] = {}
    if options.scrub:
        scrubber = Scrubber(options.scrub_names)
        rows = [scrubber.scrub_row(row) for row in rows]
        scrubbed = scrubber.counts()
    rows, duplicates = drop_duplicates(rows)
    result = ImportResult(rows, reports, scrubbed, duplicates)
    if not rows:
        raise ImportProblem("nothing to import: no rows were kept.\n" + result.summary())
    return result


def write_jsonl(result: ImportResult, out_path: str | Path, overwrite: bool = False) -> Path:
    """Write the rows as JSON lines to a new file, atomically (a temp file beside it, then os.replace)."""
    out = Path(out_path)
    if out.exists() and not overwrite:
        raise ImportProblem(f"{out}: already exists; choose a new file name (or allow overwriting it)")
    if not out.parent.is_dir():
        raise ImportProblem(f"{out}: the folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for row in result.rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
