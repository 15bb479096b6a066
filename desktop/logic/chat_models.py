"""What the Chat tab's sides are made from, as plain data: the model a run just trained (`TunedModel`)
and the LoRA adapter choice shared by the "adapter" and "base-gguf" sides (`LoraChoice`).

`load_run_model` builds a `TunedModel` from a past run's folder (base + its saved adapter, merged the
way export merges it), so runs trained before a restart can be chatted with; it imports the engine
only when called (a background job), never at import.
"""

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


def load_run_model(run_dir: str) -> TunedModel:
    """A past run's trained model (its base with the run's adapter merged in) and its tokenizer.

    The merge is export's (`core.export.merged`): a run trained on a 4-bit base is merged into the
    same NF4-rounded weights it learned against.  Kept in 16 bits on the GPU when there is one (the
    chat only generates), else in full precision on the CPU.  Raises ExportError, in words, for a
    folder without a config.yaml or a saved adapter.
    """
    import torch

    from tunesmith.core.export.merged import load_merged_model
    from tunesmith.core.export.runs import open_run

    run = open_run(run_dir)
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        model, tokenizer = load_merged_model(run, dtype)
        model.to("cuda")  # type: ignore[arg-type]  # transformers types `to` through a decorator
    else:
        model, tokenizer = load_merged_model(run)
    model.requires_grad_(False)
    return TunedModel(model, tokenizer)
