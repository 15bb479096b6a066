"""The user's verdicts on a run's answers, kept as preference pairs a DPO or ORPO run trains on.

Each verdict of the Chat tab (this answer is better than that one, or this edited answer is what the
model should have said) becomes one line of RUN_DIR/feedback/preferences.jsonl in the engine's
preference format (core.data.formats): `prompt` is the conversation up to the user's last message, as
chat messages (system prompt first when there was one), `chosen` and `rejected` one assistant message
each.  `tunesmith train --method dpo --data RUN_DIR/feedback/preferences.jsonl --init-adapter RUN_DIR`
then continues the run's adapter from them.

Why the whole file is rewritten (read, add the line, write a temporary file, fsync, os.replace) rather
than appended in place: an O_APPEND write that a crash or power cut interrupts can leave half a line,
which the dataset loader then refuses ("line N: not valid JSON") and which the next append would glue
onto; os.replace leaves either the old file or the new one, never a torn one (O_APPEND is not even
atomic on Windows).  An OS lock on a side file serialises writers, so two verdicts written at once
(two windows, two threads) cannot both rewrite from the same old file and lose one of them; the OS
drops the lock when its holder dies, so a crash never leaves the file locked.  The cost, rereading the
file per verdict, is nothing at the speed a person judges answers.

Knows files and the row format; nothing of Qt, models or training.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from tunesmith.core.paths import sync_folder

FEEDBACK_DIR = "feedback"
PREFERENCES_FILE = "preferences.jsonl"
_ROLES = ("system", "user", "assistant")


def preferences_path(run_dir: str | Path) -> Path:
    """Where a run's preference pairs are kept (the file may not exist yet)."""
    return Path(run_dir) / FEEDBACK_DIR / PREFERENCES_FILE


def preference_row(history: Sequence[dict], chosen: str, rejected: str) -> dict:
    """One pair in the engine's preference format; ValueError says what is wrong with the input.

    `history` is the conversation the answers reply to, ending with the user's message.
    """
    prompt = []
    for i, message in enumerate(history):
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES or not isinstance(content, str):
            raise ValueError(f"history[{i}] must have a role ({', '.join(_ROLES)}) and text content")
        prompt.append({"role": role, "content": content})
    if not prompt or prompt[-1]["role"] != "user":
        raise ValueError("the conversation must end with the user's message that the answers reply to")
    if not chosen.strip() or not rejected.strip():
        raise ValueError("both answers must have text: an empty answer cannot be preferred or rejected")
    if chosen.strip() == rejected.strip():
        raise ValueError("the better answer is the same as the other one, so there is nothing to prefer")
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def append_preference(run_dir: str | Path, history: Sequence[dict], chosen: str, rejected: str) -> int:
    """Add one pair to the run's preferences file, keeping every earlier line; returns how many pairs
    the file holds now."""
    line = (json.dumps(preference_row(history, chosen, rejected), ensure_ascii=False) + "\n").encode("utf-8")
    path = preferences_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(PREFERENCES_FILE + ".lock")):
        old = path.read_bytes() if path.is_file() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"  # a file edited by hand may end without one: the new pair gets its own line
        tmp = path.with_name(PREFERENCES_FILE + ".tmp")  # one writer at a time holds the lock
        with tmp.open("wb") as handle:
            handle.write(old + line)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        sync_folder(path.parent)
        return _count_lines(old + line)


def count_preferences(run_dir: str | Path) -> int:
    """How many pairs the run's preferences file holds (0 when there is none yet)."""
    path = preferences_path(run_dir)
    return _count_lines(path.read_bytes()) if path.is_file() else 0


def _count_lines(data: bytes) -> int:
    return sum(1 for line in data.splitlines() if line.strip())


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive OS lock on `lock_path` (waits for another holder; released if we die)."""
    with lock_path.open("a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # retries for 10 s, then OSError
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
