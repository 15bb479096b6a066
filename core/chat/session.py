"""The common shape of a chat engine: settings, the session interface, and history trimming.

A session turns a list of messages ({"role", "content"}) into a stream of text pieces, stopping at
the model's end tokens, at `max_new_tokens`, or as soon as `should_stop()` turns true (the Stop
button).  Backends: `LlamaCppChat` (a GGUF through llama-cpp-python) and `TransformersChat` (a model
in memory, e.g. the one just trained).  Knows no model library itself; no Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass
class ChatSettings:
    # Prepended as a system turn when set (and the history has none).
    system_prompt: str | None = None
    # 0 = greedy (always the most likely token).
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 512
    # Tokens of history + answer the model sees; older turns are dropped to fit.
    context_length: int = 2048


class ChatSession(Protocol):
    def stream(
        self, messages: list[dict], settings: ChatSettings, should_stop: Callable[[], bool]
    ) -> Iterator[str]:
        """Yield the assistant's answer piece by piece."""
        ...

    def close(self) -> None: ...


def never() -> bool:
    return False


def with_system(messages: list[dict], settings: ChatSettings) -> list[dict]:
    """The messages with the settings' system prompt first, unless the history already has one."""
    msgs = [dict(m) for m in messages]
    if settings.system_prompt and not (msgs and msgs[0].get("role") == "system"):
        msgs.insert(0, {"role": "system", "content": settings.system_prompt})
    return msgs


def fit_history(messages: list[dict], count_tokens: Callable[[list[dict]], int], budget: int) -> list[dict]:
    """Drop the oldest turns (never the system turn or the last message) until the prompt fits `budget`."""
    msgs = list(messages)
    head = [msgs.pop(0)] if msgs and msgs[0].get("role") == "system" else []
    while len(msgs) > 1 and count_tokens(head + msgs) > budget:
        msgs.pop(0)
        # Keep the turns alternating: a history may not start with an assistant turn.
        while len(msgs) > 1 and msgs[0].get("role") == "assistant":
            msgs.pop(0)
    return head + msgs
