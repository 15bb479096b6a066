"""Read any table of messages (.csv / .tsv) with a time, an author and a text column into a `Chat`.

The person names the columns (`ImportOptions.csv_columns`: {"time", "author", "text"}); left out, they are
found by common names ("timestamp", "sender", "message", ...).  The time column is optional: without it
no conversation is split at silences.  Times are ISO 8601, Unix seconds (or milliseconds), or a
"date time" written the way chat apps write it, day-first or month-first decided once for the whole file
as for WhatsApp.  A table written newest-first is turned around.  The delimiter (comma, semicolon, tab,
bar) is sniffed.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

from tunesmith.core.data.importers.common import (
    Chat,
    FileReport,
    ImportOptions,
    ImportProblem,
    Message,
    parse_iso,
)
from tunesmith.core.data.importers.whatsapp import date_order, to_datetime

ROLES = ("time", "author", "text")
COMMON_NAMES = {
    "time": ("time", "timestamp", "date", "datetime", "date_time", "sent", "sent_at", "created_at"),
    "author": ("author", "sender", "from", "name", "user", "username", "speaker", "sender_name"),
    "text": ("text", "message", "content", "body", "msg", "message_text"),
}
_DATE_TIME = re.compile(
    r"^\[?(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}),?[ T]+(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
    r"\s?(?P<ampm>[AaPp]\.?\s?[Mm]\.?)?\]?$"
)


def read_chats(path: Path, options: ImportOptions, report: FileReport) -> list[Chat]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # Excel saves "CSV" in the Windows code page in many locales
        text = data.decode("cp1252", errors="replace")
        report.notes.append("not UTF-8; read as Windows-1252 (Excel's CSV): check accented letters")
    if not text.strip():
        raise ImportProblem(f"{path}: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(path, text))
    header = [name.strip() for name in next(reader, [])]
    columns = _columns(path, header, options.csv_columns)
    index = {role: header.index(name) if name else None for role, name in columns.items()}
    raw: list[tuple[int, str, str, str]] = []  # (line, time, author, text)
    line = reader.line_num
    for record in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        report.messages_read += 1
        if len(record) != len(header):
            report.could_not_parse(f"line {start}", f"{len(record)} fields, the header has {len(header)}")
            continue
        time, author, text = (record[i].strip() if i is not None else "" for i in index.values())
        raw.append((start, time, author, text))
    chat = Chat(path.stem, _messages(raw, index["time"] is not None, report))
    report.unparsed.sort(key=lambda item: int(item[0].split()[1]))  # times are checked after the shapes
    return [chat]


def _dialect(path: Path, text: str) -> type[csv.Dialect] | csv.Dialect:
    if path.suffix.lower() == ".tsv":
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _columns(path: Path, found: list[str], named: dict[str, str] | None) -> dict[str, str | None]:
    """role -> column (None: no time column).  ImportProblem listing the columns when one is missing."""
    listed = ", ".join(found) or "none"
    hint = "Say which columns hold the time, the author and the text."
    if named:
        missing = [named[role] for role in ROLES if named.get(role) and named[role] not in found]
        if missing:
            names = " or ".join(repr(m) for m in missing)
            raise ImportProblem(f"{path}: no column named {names}; its columns are: {listed}. {hint}")
        chosen = {role: named.get(role) or None for role in ROLES}
    else:
        lowered = {name.casefold(): name for name in found}
        chosen = {
            role: next((lowered[n] for n in COMMON_NAMES[role] if n in lowered), None) for role in ROLES
        }
    if chosen["author"] is None or chosen["text"] is None:
        raise ImportProblem(
            f"{path}: could not tell the author and text columns; its columns are: {listed}. {hint}"
        )
    return chosen


def _messages(raw: list[tuple[int, str, str, str]], timed: bool, report: FileReport) -> list[Message]:
    stamped = [m for m in (_DATE_TIME.match(t) for _, t, _, _ in raw) if m is not None]
    order = date_order([m["date"] for m in stamped]) if stamped else "dmy"
    messages: list[Message] = []
    for line, time_text, author, text in raw:
        when = _time(time_text, order) if timed else None
        if timed and when is None:
            report.could_not_parse(f"line {line}", f"time {time_text!r} is not a date and time")
            continue
        if not author or not text:
            report.skip("rows without an author or a text")
            continue
        messages.append(Message(when, author, text))
    times = [m.time for m in messages if m.time is not None]
    backwards = sum(1 for a, b in zip(times, times[1:], strict=False) if b < a)
    if backwards * 2 > len(times):  # newest first, as some tools write them
        messages.reverse()
    return messages


def _time(value: str, order: str) -> datetime | None:
    parsed = parse_iso(value)
    if parsed is not None:
        return parsed
    match = _DATE_TIME.match(value)
    if match:
        return to_datetime(match["date"], match["time"], match["ampm"], order)
    try:
        number = float(value)
    except ValueError:
        return None
    try:  # Unix time in seconds, or in milliseconds as JavaScript writes it
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number)
    except (OverflowError, OSError, ValueError):
        return None
