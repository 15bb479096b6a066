"""Turn a chat's timestamped messages into OpenAI-style `messages` conversations to train on.

The speaker named `me` is the assistant, everyone else the user (a group chat has one user role; the
other speakers' names go in front of their words, or not, as `group_names` says).  Consecutive messages
of one role merge into one turn, newline-joined.  A silence longer than `gap_minutes` starts a new
conversation.  Each conversation is trimmed to start with the user and end with the assistant; one with
nothing left to learn from is dropped and counted.  Knows no file format: readers give `Chat`s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from tunesmith.core.data.importers.common import Chat, FileReport, ImportOptions, ImportProblem, Message

# How many speakers a "who are you?" message lists before "and N more" (an all-chats export has hundreds).
_SPEAKERS_LISTED = 12
NO_REPLY = "conversations with no reply from you"
ONLY_ME = "conversations with only your messages (nobody to answer)"


def _norm(name: str) -> str:
    return " ".join(name.casefold().split())


def check_me(me: str | None, speakers: Counter[str], names: Iterable[str], paths: list[str]) -> None:
    """Refuse when `me` is not given or wrote nothing, listing the speakers (most messages first)."""
    if not speakers:
        return
    files = paths[0] if len(paths) == 1 else f"{len(paths)} files"
    listed = ", ".join(f"{name} ({count} messages)" for name, count in speakers.most_common(_SPEAKERS_LISTED))
    if len(speakers) > _SPEAKERS_LISTED:
        listed += f" and {len(speakers) - _SPEAKERS_LISTED} more"
    if me is None or not me.strip():
        raise ImportProblem(
            f"{files}: say which speaker is you (--me NAME): your messages become the answers the model "
            f"learns to give. Speakers found: {listed}.",
            dict(speakers),
        )
    if _norm(me) not in {_norm(name) for name in names}:
        raise ImportProblem(
            f"{files}: no messages from '{me}'. Speakers found: {listed}. Pass --me with your name as the "
            "export writes it.",
            dict(speakers),
        )


def to_conversations(chats: list[Chat], options: ImportOptions, report: FileReport) -> list[dict[str, Any]]:
    """The conversations of these chats as rows {"messages": [...]}, counting into `report`."""
    me = _norm(options.me or "")
    rows: list[dict[str, Any]] = []
    for chat in chats:
        group = len(chat.speakers()) > 2
        for segment in split_at_gaps(chat.messages, options.gap_minutes):
            report.conversations_read += 1
            row = _conversation(segment, me, group and options.group_names == "keep", report)
            if row is not None:
                rows.append(row)
    return rows


def is_me(message: Message, me: str) -> bool:
    return _norm(message.author) == me or any(_norm(alias) == me for alias in message.aliases)


def split_at_gaps(messages: list[Message], gap_minutes: float) -> list[list[Message]]:
    """Runs of messages with no silence longer than the gap between neighbours (unknown times never split)."""
    gap = timedelta(minutes=gap_minutes)
    segments: list[list[Message]] = []
    for message in messages:
        previous = segments[-1][-1] if segments else None
        if (
            previous is None
            or previous.time is not None
            and message.time is not None
            and message.time - previous.time > gap
        ):
            segments.append([message])
        else:
            segments[-1].append(message)
    return segments


def _conversation(
    segment: list[Message], me: str, names_in_text: bool, report: FileReport
) -> dict[str, Any] | None:
    # A conversation that opens with my reply to an older message (Telegram, Discord say which) gets that
    # message as its opening user turn: otherwise the reply would be trimmed away for lack of a question.
    first = segment[0]
    if is_me(first, me) and first.reply_to is not None and not is_me(first.reply_to, me):
        segment = [first.reply_to, *segment]
    turns: list[tuple[str, list[str]]] = []  # (role, the texts of its messages)
    for message in segment:
        role = "assistant" if is_me(message, me) else "user"
        text = f"{message.author}: {message.text}" if names_in_text and role == "user" else message.text
        if turns and turns[-1][0] == role:
            turns[-1][1].append(text)
        else:
            turns.append((role, [text]))
    had_mine = any(role == "assistant" for role, _ in turns)
    while turns and turns[0][0] == "assistant":
        turns.pop(0)
    while turns and turns[-1][0] == "user":
        turns.pop()
    if not turns:
        report.skip(ONLY_ME if had_mine and not _has_user(segment, me) else NO_REPLY)
        return None
    report.conversations_kept += 1
    report.messages_kept += sum(len(texts) for _, texts in turns)
    return {"messages": [{"role": role, "content": "\n".join(texts)} for role, texts in turns]}


def _has_user(segment: list[Message], me: str) -> bool:
    return any(not is_me(message, me) for message in segment)
