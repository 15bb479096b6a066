"""What the Chat tab's sides are made from, as plain data: the model a run just trained (`TunedModel`)
and the LoRA adapter choice shared by the "adapter" and "base-gguf" sides (`LoraChoice`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunesmith.core.chat.lora_switch import LoraSwitch


@dataclass(frozen=True)
class TunedModel:
    """What chatting with a finished run needs: its trained model and tokenizer, not its trainer."""

    model: Any  # a transformers (peft) model: typed loosely so this module never imports torch
    tokenizer: Any


@dataclass
class LoraChoice:
    """The adapter GGUF to apply to the base GGUF, how strongly, and the loaded pair (`switch`).

    `switch` (the engine's LoraSwitch) is created by a background job under `lock`, then shared by
    the "adapter" side (adapter on at `scale`) and the "base-gguf" side (adapter off).
    """

    path: str | None = None
    run_dir: str | None = None  # the run the adapter came from: its base model and tokenizer
    enabled: bool = True
    scale: float = 1.0
    switch: LoraSwitch | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
