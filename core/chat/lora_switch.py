"""One base GGUF in llama.cpp answering as two models: the base (adapter off) and the tuned model
(base + LoRA adapter GGUF at a chosen scale), as the Chat tab's side-by-side view wants.

Both sides share one `LlamaCppChat`, so the base weights are in memory once; each side applies its
own adapter setting just before it answers (`set_adapter` swaps the adapter on the open context, the
base is not reloaded).  The sides must answer one after the other, never at the same time: the chat
worker streams sides in turn.  `enabled` and `scale` may be changed between answers from any thread.
llama.cpp itself runs in the chat's child process: if it crashes, the answer in progress fails with
its words, and the next answer opens the base in a new child with this side's adapter applied.
Knows `LlamaCppChat`; not Qt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .session import ChatSettings

if TYPE_CHECKING:
    from .llama_cpp_chat import LlamaCppChat


class LoraSwitch:
    def __init__(
        self,
        chat: LlamaCppChat,
        adapter_path: str | os.PathLike[str] | None,
        scale: float = 1.0,
        enabled: bool = True,
    ) -> None:
        self.chat = chat  # a LlamaCppChat on the base GGUF
        # None until an adapter is chosen: the tuned side then answers as the base does.
        self.adapter_path = Path(adapter_path) if adapter_path else None
        self.scale = float(scale)
        self.enabled = bool(enabled)

    def side(self, tuned: bool) -> LoraSide:
        """A chat engine for one side: the tuned model (adapter as set here) or the base (adapter off)."""
        return LoraSide(self, tuned)

    def apply(self, tuned: bool) -> None:
        """Put the shared model in this side's state (cheap when nothing changes)."""
        if tuned and self.enabled and self.scale != 0 and self.adapter_path is not None:
            self.chat.set_adapter(self.adapter_path, self.scale)
        else:
            self.chat.set_adapter(None)

    def close(self) -> None:
        self.chat.close()


class LoraSide:
    """The ChatSession interface over a LoraSwitch, for the base side or the tuned side."""

    def __init__(self, switch: LoraSwitch, tuned: bool) -> None:
        self.switch = switch
        self.tuned = tuned

    def stream(
        self, messages: list[dict], settings: ChatSettings, should_stop: Callable[[], bool]
    ) -> Iterator[str]:
        self.switch.apply(self.tuned)
        yield from self.switch.chat.stream(messages, settings, should_stop)

    def close(self) -> None:
        """The shared model stays open for the other side; `LoraSwitch.close` ends it."""
