"""Drop rows that repeat: exact copies, and near copies that differ only in case, spacing or punctuation.

Chats repeat themselves ("ok" / "ok!" exchanges, the same greeting every morning) and a model trained on
many copies learns them by heart.  A row's key is its roles and texts; the first row with a key is kept.
Works on any row shape (messages or text); knows nothing else.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

_NOT_ALNUM = re.compile(r"[\W_]+")


def drop_duplicates(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(the rows without duplicates, {"exact": n, "near": m} rows dropped)."""
    exact_seen: set[str] = set()
    near_seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    dropped = {"exact": 0, "near": 0}
    for row in rows:
        exact = json.dumps(row, sort_keys=True, ensure_ascii=False)
        near = near_key(row)
        if exact in exact_seen:
            dropped["exact"] += 1
        elif near in near_seen:
            dropped["near"] += 1
        else:
            kept.append(row)
        exact_seen.add(exact)
        near_seen.add(near)
    return kept, dropped


def near_key(row: dict[str, Any]) -> str:
    """The row's roles and texts, case-folded, without punctuation or symbols, spaces collapsed."""
    if "messages" in row:
        parts = [f"{m.get('role')}:{normalise_text(str(m.get('content', '')))}" for m in row["messages"]]
        return "\n".join(parts)
    return normalise_text(json.dumps(row, sort_keys=True, ensure_ascii=False))


def normalise_text(text: str) -> str:
    # Everything but letters and digits (punctuation, symbols, emoji, spaces) becomes one space.
    return _NOT_ALNUM.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
