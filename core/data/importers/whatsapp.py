"""Read WhatsApp's "Export chat" file (.txt, or the .zip a phone makes) into a `Chat`.

Android writes `12/31/23, 9:05 PM - Ann: text`, iPhone `[31/12/2023, 21:05:09] Ann: text`; the date and
time follow the phone's locale (day-first or month-first, with dots, slashes or dashes; 12- or 24-hour;
seconds or not), iPhones put a narrow no-break space (U+202F) before AM/PM and a left-to-right mark
(U+200E) before attachment and system lines.  Whether a file is day-first or month-first is decided once
per file from all its dates (`date_order`), never per line.  A line that does not start with a date
continues the message above it.  Attachments without a caption, deleted messages and system lines
(joins, encryption notices, missed calls) are skipped and counted.  Knows nothing about roles.
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path

from tunesmith.core.data.importers.common import Chat, FileReport, ImportOptions, ImportProblem, Message

_SPACE = "[ \u00a0\u202f]"
_HEADER = re.compile(
    r"^[\u200e\u200f\ufeff]*(?P<open>\[)?"
    r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})\.?,?" + _SPACE + r"(?:(?:à|um|kl\.|klo|at)" + _SPACE + ")?"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
    r"(?:" + _SPACE + r"?(?P<ampm>[AaPp]\.?" + _SPACE + r"?[Mm]\.?))?"
    r"(?(open)\]" + _SPACE + "|" + _SPACE + "[-\u2013]" + _SPACE + ")"
    r"(?P<rest>.*)$"
)
_DATE_PARTS = re.compile(r"(\d+)[./-](\d+)[./-](\d+)")
# Direction marks and isolates iPhones put around lines and mentioned names: invisible, not text.
_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_EDITED = re.compile(r"\s*\u200e?<This message was edited>$")
_DELETED = re.compile(
    r"^(?:this message was deleted|you deleted this message|diese nachricht wurde gelöscht|"
    r"du hast diese nachricht gelöscht|se eliminó este mensaje|eliminaste este mensaje|"
    r"ce message a été supprimé|vous avez supprimé ce message|questo messaggio è stato eliminato)\.?$",
    re.IGNORECASE,
)
_MEDIA = re.compile(
    r"^(?:<[^<>]+>|null|.+\(file attached\)|(?:location|standort): \S+|"
    r"(?:image|video|audio|sticker|gif|document|contact card|photo|bild|audio|dokument)\s+"
    r"(?:omitted|weggelassen)|.*\.(?:jpg|jpeg|png|webp|opus|mp4|pdf|vcf)\s*\(.*\))$",
    re.IGNORECASE,
)
_UNDELIVERED = re.compile(r"^waiting for this message", re.IGNORECASE)
SKIP_MEDIA = "attachments without text (photos, voice notes, stickers, files)"
SKIP_DELETED = "deleted messages"
SKIP_SYSTEM = "system lines (joins, encryption notices, calls, group changes)"
SKIP_UNDELIVERED = "messages missing from the export ('Waiting for this message')"


def looks_like_whatsapp(lines: list[str]) -> bool:
    """Whether these (first) lines are a WhatsApp export: most non-blank ones start with its date stamp."""
    filled = [line for line in lines if line.strip()]
    dated = sum(1 for line in filled if _HEADER.match(line))
    return dated >= 2 and dated * 3 >= len(filled) or dated == 1 and len(filled) <= 2


def read_chats(path: Path, options: ImportOptions, report: FileReport) -> list[Chat]:
    """The one chat of a WhatsApp export (.txt or .zip), counting into `report`."""
    name, text = _read_text(path)
    entries = _entries(text.splitlines(), report)
    if not entries:
        from tunesmith.core.data.importers.sniff import wrong_format

        raise wrong_format(path, "whatsapp", report)
    order = date_order([entry[1] for entry in entries])
    chat = Chat(name)
    for line_no, date, time, ampm, rest in entries:
        report.messages_read += 1
        when = to_datetime(date, time, ampm, order)
        if when is None:
            report.could_not_parse(f"line {line_no}", f"date {date} {time} is not a date")
            continue
        message = _message(when, rest, report)
        if message is not None:
            chat.messages.append(message)
    return [chat]


def _read_text(path: Path) -> tuple[str, str]:
    """(the chat's name, the export's text), from a .txt or from the .txt inside a phone's .zip."""
    if path.suffix.lower() != ".zip":
        return _chat_name(path.stem), path.read_bytes().decode("utf-8-sig", errors="replace")
    try:
        with zipfile.ZipFile(path) as archive:
            texts = [info for info in archive.infolist() if info.filename.lower().endswith(".txt")]
            if not texts:
                held = ", ".join(archive.namelist()[:5]) or "nothing"
                raise ImportProblem(f"{path}: no chat (.txt) inside this .zip; it holds {held}")
            # iPhones name it _chat.txt, Androids "WhatsApp Chat with NAME.txt"; else the largest text.
            chosen = max(texts, key=lambda info: (Path(info.filename).name == "_chat.txt", info.file_size))
            data = archive.read(chosen)
    except zipfile.BadZipFile:
        raise ImportProblem(f"{path}: not a readable .zip file (damaged or not a zip)") from None
    return _chat_name(path.stem), data.decode("utf-8-sig", errors="replace")


def _chat_name(stem: str) -> str:
    return re.sub(r"^WhatsApp Chat (?:with|-) ", "", stem)


def _entries(lines: list[str], report: FileReport) -> list[tuple[int, str, str, str | None, str]]:
    """(line number, date, time, AM/PM, rest) per dated line; later lines joined to the one above."""
    entries: list[tuple[int, str, str, str | None, str]] = []
    for number, line in enumerate(lines, start=1):
        match = _HEADER.match(line)
        if match:
            entries.append((number, match["date"], match["time"], match["ampm"], match["rest"]))
        elif entries:
            number_, date, time, ampm, rest = entries[-1]
            entries[-1] = (number_, date, time, ampm, rest + "\n" + line)
        elif line.strip():
            report.could_not_parse(f"line {number}", line)
    return entries


def date_order(dates: list[str]) -> str:
    """ "ymd", "dmy" or "mdy" for the whole file: the order under which every date is a real date; when
    both are, the one whose times run forward more often (a chat is in time order); a tie is day-first,
    as most locales write it."""
    matches = [m for m in map(_DATE_PARTS.match, dates) if m is not None]
    if matches and len(matches[0][1]) == 4:  # 2023-12-31: a year first is always year-month-day
        return "ymd"
    parts = [tuple(int(p) for p in m.groups()) for m in matches]
    fits = {order: sum(_valid(p, order) for p in parts) for order in ("dmy", "mdy")}
    if fits["dmy"] != fits["mdy"]:
        return max(fits, key=lambda order: fits[order])
    forward = {order: _forward_steps(parts, order) for order in ("dmy", "mdy")}
    return "mdy" if forward["mdy"] > forward["dmy"] else "dmy"


def _ymd(part: tuple[int, ...], order: str) -> tuple[int, int, int]:
    a, b, c = part
    if order == "ymd":
        year, month, day = a, b, c
    elif order == "dmy":
        day, month, year = a, b, c
    else:
        month, day, year = a, b, c
    return (year + 2000 if year < 100 else year), month, day


def _valid(part: tuple[int, ...], order: str) -> bool:
    try:
        datetime(*_ymd(part, order))
    except ValueError:
        return False
    return True


def _forward_steps(parts: list[tuple[int, ...]], order: str) -> int:
    days = [_ymd(p, order) for p in parts]
    return sum(1 for earlier, later in zip(days, days[1:], strict=False) if later >= earlier)


def to_datetime(date: str, time: str, ampm: str | None, order: str) -> datetime | None:
    match = _DATE_PARTS.match(date)
    if match is None:
        return None
    pieces = [int(p) for p in re.split(r"[:.]", time)]
    hour, minute, second = pieces[0], pieces[1], pieces[2] if len(pieces) > 2 else 0
    if ampm:
        hour = hour % 12 + (12 if ampm.lower().startswith("p") else 0)
    try:
        return datetime(*_ymd(tuple(int(p) for p in match.groups()), order), hour, minute, second)
    except ValueError:
        return None


def _message(when: datetime, rest: str, report: FileReport) -> Message | None:
    """The message of one dated entry, or None (counted in `report`) for what is not a message."""
    author, sep, text = rest.partition(": ")
    author = _MARKS.sub("", author).strip()
    if not sep or not author or len(author) > 60 or any(q in author for q in '"“”«»'):
        report.skip(SKIP_SYSTEM)  # Android: "Ann added Bob", "Messages and calls are end-to-end encrypted"
        return None
    system_mark = text.startswith("\u200e")  # iPhone: system and attachment lines start with U+200E
    text = _EDITED.sub("", text)
    first, _, caption = text.partition("\n")
    first = _MARKS.sub("", first).strip()
    if _DELETED.match(first):
        report.skip(SKIP_DELETED)
        return None
    if _UNDELIVERED.match(first):
        report.skip(SKIP_UNDELIVERED)
        return None
    if len(first) <= 300 and _MEDIA.match(first):  # attachment lines are short; a long line is words
        caption = _MARKS.sub("", caption).strip()  # Android writes a caption below the file's line
        if not caption:
            report.skip(SKIP_MEDIA)
            return None
        return Message(when, author, caption)
    if system_mark:  # "[...] Family: \u200eMessages and calls are end-to-end encrypted."
        report.skip(SKIP_SYSTEM)
        return None
    clean = _MARKS.sub("", text).strip()
    if not clean:
        report.skip("empty messages")
        return None
    return Message(when, author, clean)
