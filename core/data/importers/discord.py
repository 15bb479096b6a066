"""Read DiscordChatExporter's JSON export (a channel or direct messages) into a `Chat`.

The export is {"guild": {...}, "channel": {...}, "messages": [{"type", "timestamp", "content",
"author": {"name", "nickname"}, "attachments", "reference"}]}.  Only "Default" and "Reply" messages are
people talking; the other types (joins, pins, calls, thread and name changes) are skipped and counted.
A speaker is shown by their nickname and matched by nickname or user name (`--me` takes either).  A
reply remembers the message it answers (see conversations.py).  Broken entries are reported by JSON path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.core.data.importers.common import Chat, FileReport, ImportOptions, Message, parse_iso
from tunesmith.core.data.importers.telegram import load_json

SKIP_SYSTEM = "system messages (joins, pins, calls, channel changes)"
SKIP_MEDIA = "attachments without text (images, files, stickers, embeds)"
_SPOKEN = {"Default", "Reply"}


def read_chats(path: Path, options: ImportOptions, report: FileReport) -> list[Chat]:
    data = load_json(path, "discord", report)
    if not (isinstance(data, dict) and isinstance(data.get("messages"), list) and "channel" in data):
        from tunesmith.core.data.importers.sniff import wrong_format

        raise wrong_format(path, "discord", report)
    channel = data["channel"] if isinstance(data.get("channel"), dict) else {}
    chat = Chat(str(channel.get("name") or Path(path).stem))
    by_id: dict[Any, Message] = {}
    for j, item in enumerate(data["messages"]):
        where = f"messages[{j}]"
        report.messages_read += 1
        message = _message(item, where, report)
        if message is None:
            continue
        reference = item.get("reference")
        if isinstance(reference, dict):
            message.reply_to = by_id.get(reference.get("messageId"))
        by_id[item.get("id")] = message
        chat.messages.append(message)
    return [chat]


def _message(item: Any, where: str, report: FileReport) -> Message | None:
    if not isinstance(item, dict):
        report.could_not_parse(where, f"not a message: {str(item)[:80]}")
        return None
    if item.get("type", "Default") not in _SPOKEN:
        report.skip(SKIP_SYSTEM)
        return None
    author: dict[str, Any] = item["author"] if isinstance(item.get("author"), dict) else {}
    name, nickname = author.get("name"), author.get("nickname")
    if not isinstance(name, str) or not name:
        report.could_not_parse(f"{where}.author.name", "no author name")
        return None
    nickname = nickname if isinstance(nickname, str) and nickname else None
    when = parse_iso(item.get("timestamp"))
    if when is None:
        report.could_not_parse(f"{where}.timestamp", f"no readable time: {item.get('timestamp')!r}")
        return None
    content = item.get("content", "")
    if not isinstance(content, str):
        report.could_not_parse(f"{where}.content", "content is not text")
        return None
    if not content.strip():
        media = any(item.get(key) for key in ("attachments", "embeds", "stickers"))
        report.skip(SKIP_MEDIA if media else "empty messages")
        return None
    display = nickname or name
    return Message(when, display, content.strip(), aliases=(name,) if display != name else ())
