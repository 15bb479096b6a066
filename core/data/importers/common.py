"""What every importer shares: the options a person chooses, the per-file report, the result, the error.

Also the plain shape the chat readers hand to `conversations.py`: a `Chat` of timestamped `Message`s.
Knows no file format and no privacy rule; pure data and the words that describe it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

# The first unparsable lines a report keeps to show; the rest are only counted (a wrong file can have
# thousands, and the person needs a few to see what went wrong, not all of them).
MAX_UNPARSED_SHOWN = 5


@dataclass
class ImportOptions:
    """What the person chose for an import (the CLI flags and the wizard's fields)."""

    me: str | None = None  # the speaker whose messages become the assistant's turns
    scrub: bool = False
    scrub_names: tuple[str, ...] = ()  # extra names replaced by <NAME> (whole word, any case)
    # A new conversation after this many minutes of silence.  An hour: replies in a running chat come
    # within minutes, and after an hour people usually open a new topic (a greeting, a new question) rather
    # than continue the last one; the shorter the gap the more short, context-free rows.
    gap_minutes: float = 60
    # Group chats: "keep" writes each other speaker's name before their words ("Ann: hi") so the model
    # sees who said what; "drop" leaves only the words (less personal data, less to learn from).
    group_names: Literal["keep", "drop"] = "keep"
    # CSV: which columns hold time, author and text ({"time": ..., "author": ..., "text": ...}); None
    # guesses from common names.  "time" may be left out (then no gap splitting).
    csv_columns: dict[str, str] | None = None
    # Documents: chunks of at most this many tokens, counted by `token_counter` (the chosen model's
    # tokenizer); both None means a chars-based estimate in the docs importer.
    max_tokens: int | None = None
    token_counter: Callable[[str], int] | None = None


@dataclass
class FileReport:
    """What one file gave: read, kept, skipped (reason -> count) and the first lines that did not parse."""

    path: str
    source: str
    conversations_read: int = 0
    messages_read: int = 0
    conversations_kept: int = 0
    messages_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason in words -> how many
    unparsed: list[tuple[str, str]] = field(default_factory=list)  # ("line 12" or "messages[3].text", text)
    unparsed_count: int = 0  # all of them, shown or not
    looks_like: str | None = None  # a wrong file: what it looks like and which source reads it
    refused: str | None = None  # the whole file was refused (one of several): why, in words
    speakers: dict[str, int] = field(default_factory=dict)  # chat files: speaker -> messages written
    notes: list[str] = field(default_factory=list)  # worth a word, not a problem (an encoding guessed)

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def could_not_parse(self, where: str, text: str) -> None:
        self.unparsed_count += 1
        if len(self.unparsed) < MAX_UNPARSED_SHOWN:
            self.unparsed.append((where, text[:200]))

    def summary(self) -> str:
        """A few lines in plain words."""
        if self.refused:
            return f"{self.path}: not imported: {self.refused}"
        lines = [
            f"{self.path} ({self.source}): kept {self.conversations_kept} of {self.conversations_read} "
            f"{_unit(self.source)}, {self.messages_kept} of {self.messages_read} messages"
            if self.source != "docs"
            else f"{self.path} (docs): kept {self.conversations_kept} of {self.conversations_read} chunks"
        ]
        lines += [f"  note: {note}" for note in self.notes]
        for reason, count in sorted(self.skipped.items(), key=lambda item: -item[1]):
            lines.append(f"  skipped {count}: {reason}")
        if self.unparsed_count:
            lines.append(f"  {self.unparsed_count} line(s) could not be read, first ones:")
            lines += [f"    {where}: {text}" for where, text in self.unparsed]
        return "\n".join(lines)


def _unit(source: str) -> str:
    return "chunks" if source == "docs" else "conversations"


@dataclass
class ImportResult:
    rows: list[dict[str, Any]]
    files: list[FileReport]
    scrubbed: dict[str, int] = field(default_factory=dict)  # "email", "phone", ... -> replacements
    duplicates_dropped: dict[str, int] = field(default_factory=dict)  # "exact" / "near" -> rows

    def summary(self) -> str:
        """What the import did, in plain words: rows written, per file, privacy, duplicates."""
        lines = [f"{len(self.rows)} rows ready to train on."]
        lines += [report.summary() for report in self.files]
        if self.scrubbed and any(self.scrubbed.values()):
            parts = [f"{count} {kind}" for kind, count in self.scrubbed.items() if count]
            lines.append("Replaced for privacy: " + ", ".join(parts) + ".")
        elif self.scrubbed:  # scrubbing was on: say so, or the person cannot tell it ran
            lines.append("Privacy scrub: found nothing to replace.")
        dropped = {kind: n for kind, n in self.duplicates_dropped.items() if n}
        if dropped:
            parts = [
                f"{n} {'exact' if kind == 'exact' else 'near'} duplicate(s)" for kind, n in dropped.items()
            ]
            lines.append("Dropped " + " and ".join(parts) + ".")
        return "\n".join(lines)


class ImportProblem(ValueError):
    """A whole file (or the whole import) cannot be used; the message names the file and what to do.

    `speakers` (speaker -> messages) is set when the problem is who "me" is, so the app can offer them."""

    def __init__(self, message: str, speakers: dict[str, int] | None = None):
        super().__init__(message)
        self.speakers = dict(speakers or {})


@dataclass
class Message:
    """One message as a chat export holds it, before roles are given."""

    time: datetime | None
    author: str
    text: str
    aliases: tuple[str, ...] = ()  # other names the author goes by (Discord: user name and nickname)
    reply_to: Message | None = None  # the message this one answers, when the export says so


@dataclass
class Chat:
    """The messages of one chat (a file, or one chat of a Telegram "all chats" export), in order."""

    name: str
    messages: list[Message] = field(default_factory=list)

    def speakers(self) -> Counter[str]:
        return Counter(message.author for message in self.messages)


def parse_iso(text: object) -> datetime | None:
    """An ISO 8601 time as exports write it ("2023-12-31T21:05:09", "...09.123+00:00", "...Z"), as a naive
    UTC time (so times of one file compare whatever offsets they carry), or None when it is not one."""
    if not isinstance(text, str):
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, tail = value.partition(".")
    if dot:  # fractions of any length (Python 3.10 takes only 3 or 6 digits)
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed
