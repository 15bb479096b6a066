"""A rendered example as a person reads it: the chat template's markup turned into role headings, and
the system message the template adds on its own, when the row did not write one.

The model reads `<|im_start|>user\\nHi<|im_end|>` (ChatML: SmolLM2, Qwen) or `<|start_header_id|>user
<|end_header_id|>\\n\\nHi<|eot_id|>` (Llama 3); the Dataset tab shows "[User]" and "Hi" instead, with a
toggle for the raw text.  Some templates (SmolLM2's among them) add a default system message to every
conversation that has none: the user should know the model is trained with it.  Text only, no Qt.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ROLE_WORDS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def _heading(match: re.Match[str]) -> str:
    role = match.group(1)
    return f"\n[{ROLE_WORDS.get(role, role.title())}]\n"


# (markup, what it becomes); applied to each highlighted piece, so the trained-on marks stay in place.
_MARKUP: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"<\|im_start\|>(\w+)\n"), _heading),
    (re.compile(r"<\|im_end\|>\n?"), ""),
    (re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n"), _heading),
    (re.compile(r"<\|eot_id\|>|<\|begin_of_text\|>|<\|end_of_text\|>"), ""),
]
# The system message inside the rendered text, for the templates above.
_SYSTEM = [
    re.compile(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", re.DOTALL),
    re.compile(r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.DOTALL),
]


def readable(segments: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """The same pieces with the chat markup replaced by role headings (trained-on marks kept)."""
    result = []
    for index, (text, trained) in enumerate(segments):
        for pattern, replacement in _MARKUP:
            text = pattern.sub(replacement, text)
        if index == 0:
            text = text.lstrip("\n")
        result.append((text, trained))
    return result


def added_system_message(rendered: str, messages: list[dict]) -> str | None:
    """The system message the template put in `rendered` although `messages` has none; else None."""
    if any(message.get("role") == "system" for message in messages):
        return None
    for pattern in _SYSTEM:
        found = pattern.search(rendered)
        if found and found.group(1).strip():
            return found.group(1).strip()
    return None
