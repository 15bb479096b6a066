"""Read Telegram Desktop's JSON export (result.json) into `Chat`s: one chat, or every chat of an
"all chats" export (`chats.list`); conversations never cross from one chat to another.

A message's text is a string, or a list of pieces (plain strings and {"type": "bold", "text": ...}
entities) which are joined.  Service messages (joins, calls, pins) are skipped and counted, and so are
channels (posts, not conversations) and attachments without a caption.  Forwarded messages: one that
someone else forwarded is kept as their turn (it is what they shared, and your answer refers to it);
one that *you* forwarded is skipped, since the model should learn your words, not the ones you passed
on.  Replies: the message replied to is remembered, so a conversation that opens with your reply to an
older message starts with that message as its question (see conversations.py).  Broken entries are
reported by JSON path ("chats.list[2].messages[14].date").
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tunesmith.core.data.importers.common import (
    Chat,
    FileReport,
    ImportOptions,
    ImportProblem,
    Message,
    parse_iso,
)

SKIP_SERVICE = "service messages (joins, calls, pins, group changes)"
SKIP_MEDIA = "attachments without text (photos, voice notes, stickers, files)"
SKIP_FORWARDED = "messages you forwarded (not your words)"
SKIP_CHANNEL = "channel posts (a channel is not a conversation)"
_MEDIA_KEYS = (
    "photo",
    "file",
    "media_type",
    "sticker_emoji",
    "poll",
    "location_information",
    "contact_vcard",
)


def load_json(path: Path, source: str, report: FileReport) -> Any:
    """The parsed JSON of an export, or ImportProblem saying what the file is instead."""
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as exc:
        from tunesmith.core.data.importers.sniff import sniff, wrong_format

        if sniff(path) not in (None, source):
            raise wrong_format(path, source, report) from None
        raise ImportProblem(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "export the chat again, the file may be cut off"
        ) from None


def read_chats(path: Path, options: ImportOptions, report: FileReport) -> list[Chat]:
    data = load_json(path, "telegram", report)
    if isinstance(data, dict) and isinstance(data.get("chats"), dict):
        found = data["chats"].get("list")
        entries = [
            (f"chats.list[{i}].", chat) for i, chat in enumerate(found if isinstance(found, list) else [])
        ]
    elif isinstance(data, dict) and isinstance(data.get("messages"), list):
        entries = [("", data)]
    else:
        from tunesmith.core.data.importers.sniff import wrong_format

        raise wrong_format(path, "telegram", report)
    me = (options.me or "").casefold().strip()
    chats: list[Chat] = []
    for prefix, raw in entries:
        if not isinstance(raw, dict) or not isinstance(raw.get("messages"), list):
            report.could_not_parse(prefix.rstrip(".") or "(top)", "a chat without a list of messages")
            continue
        if str(raw.get("type", "")).endswith("_channel"):
            report.messages_read += len(raw["messages"])
            report.skip(SKIP_CHANNEL, len(raw["messages"]))
            continue
        chats.append(_chat(raw, prefix, me, report))
    return chats


def _chat(raw: dict[str, Any], prefix: str, me: str, report: FileReport) -> Chat:
    chat = Chat(str(raw.get("name") or raw.get("type") or "chat"))
    by_id: dict[Any, Message] = {}
    for j, item in enumerate(raw["messages"]):
        where = f"{prefix}messages[{j}]"
        report.messages_read += 1
        if not isinstance(item, dict):
            report.could_not_parse(where, f"not a message: {str(item)[:80]}")
            continue
        if item.get("type") == "service":
            report.skip(SKIP_SERVICE)
            continue
        message = _message(item, where, me, report)
        if message is None:
            continue
        reply_id = item.get("reply_to_message_id")
        message.reply_to = by_id.get(reply_id) if reply_id is not None else None
        by_id[item.get("id")] = message
        chat.messages.append(message)
    return chat


def _message(item: dict[str, Any], where: str, me: str, report: FileReport) -> Message | None:
    text = entity_text(item.get("text", ""))
    if text is None:
        report.could_not_parse(
            f"{where}.text", f"text is neither a string nor a list: {str(item['text'])[:80]}"
        )
        return None
    when = _date(item)
    if when is None:
        report.could_not_parse(f"{where}.date", f"no readable date: {item.get('date')!r}")
        return None
    author = str(item.get("from") or "Deleted Account")
    if not text.strip():
        report.skip(SKIP_MEDIA if any(key in item for key in _MEDIA_KEYS) else "empty messages")
        return None
    if item.get("forwarded_from") and author.casefold().strip() == me:
        report.skip(SKIP_FORWARDED)
        return None
    return Message(when, author, text.strip())


def entity_text(value: Any) -> str | None:
    """The text of a Telegram message: a string, or the pieces of a list joined (None if neither)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return None
    pieces = []
    for piece in value:
        if isinstance(piece, str):
            pieces.append(piece)
        elif isinstance(piece, dict) and isinstance(piece.get("text"), str):
            pieces.append(piece["text"])
    return "".join(pieces)


def _date(item: dict[str, Any]) -> datetime | None:
    parsed = parse_iso(item.get("date"))
    if parsed is not None:
        return parsed
    try:
        return datetime.fromtimestamp(int(item["date_unixtime"]))
    except (KeyError, ValueError, TypeError, OverflowError, OSError):
        return None
