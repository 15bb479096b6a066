"""Lazy doors into the engine, for the controller's background jobs.

Each function imports its part of tunesmith.core only when called (so the window opens without torch),
and turns a missing engine part into `NotAvailable` with a plain message instead of a crash.  Also
turns any exception into (message, hint) for the user.  Only the controller calls these.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any


class NotAvailable(RuntimeError):
    """An engine feature this build does not have yet."""

    hint = "This part of Tunesmith is not available yet in this build."


def _engine(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(f"tunesmith.core.{module}"), name)
    except (ImportError, AttributeError) as exc:
        raise NotAvailable(f"{module}.{name} is not available yet ({exc}).") from exc


def detect_hardware() -> Any:
    """The engine's HardwareInfo for this machine."""
    return _engine("hardware", "detect_hardware")()


def estimate_vram(config: Any, hardware: Any) -> Any:
    """The engine's VramEstimate for `config` on `hardware`."""
    return _engine("vram", "estimate_vram")(config, hardware)


def export_run(run_dir: str, fmt: str, quant: str | None, output: str | None, on_progress) -> Any:
    """Export a run folder through the engine."""
    return _engine("export", "export_run")(run_dir, fmt, quant=quant, output=output, on_progress=on_progress)


def export_choices() -> tuple[list[str], list[str]]:
    """Export formats and GGUF quantizations offered in the dialog (the engine's lists)."""
    try:
        module = importlib.import_module("tunesmith.core.export")
        return list(module.ALL_FORMATS), list(module.GGUF_QUANTS)
    except (ImportError, AttributeError):
        return ["lora", "merged", "gguf"], ["f16", "q8_0", "q4_k_m"]


def chat_settings(values: dict) -> Any:
    """The engine's ChatSettings built from the Chat tab's plain values."""
    return _engine("chat", "ChatSettings")(**values)


def chat_engine(
    side: str,
    tuned: Any,
    base_source: str,
    gguf_path: str | None,
    run_dir: str | None,
    lora: Any = None,
) -> Any:
    """A chat engine for one side of the Chat tab.

    "tuned": the model just trained (`tuned`: the training session's TunedModel), through the engine's
    transformers chat;
    "base": the untouched base model; "gguf": a GGUF file through llama.cpp;
    "adapter" / "base-gguf": the base GGUF with the LoRA adapter GGUF on / off, one model shared by
    both (`lora` is the chat session's LoraChoice).
    """
    if side == "tuned":
        if tuned is None or getattr(tuned, "model", None) is None:
            raise NotAvailable("There is no trained model yet: train one in the Train tab first.")
        return _engine("chat", "TransformersChat")(tuned.model, tuned.tokenizer)
    if side == "gguf":
        if not gguf_path:
            raise NotAvailable("Choose a GGUF file first.")
        return _engine("chat", "LlamaCppChat")(gguf_path)
    if side == "base":
        return _base_chat(base_source)
    if side in ("adapter", "base-gguf"):
        return _lora_side(side, lora, run_dir, base_source)
    raise ValueError(f"unknown chat side {side!r}")


def _lora_side(side: str, lora: Any, run_dir: str | None, base_source: str) -> Any:
    if side == "adapter" and not lora.path:
        raise NotAvailable(
            "Choose a LoRA adapter GGUF first: export one (Export → LoRA adapter as GGUF) or open it."
        )
    with lora.lock:  # both sides may be loading at once; the base GGUF is opened once
        if lora.switch is None:
            chat = _engine("chat", "LlamaCppChat")(base_gguf(lora.run_dir or run_dir, base_source))
            # The choice is read after the (slow) load: the user may have changed it meanwhile.
            lora.switch = _engine("chat", "LoraSwitch")(chat, lora.path, lora.scale, lora.enabled)
        return lora.switch.side(tuned=side == "adapter")


def base_gguf(run_dir: str | None, base_source: str) -> Path:
    """The base model as a GGUF (converted once): the run's base and tokenizer when there is a run."""
    if run_dir and (Path(run_dir) / "adapter" / "adapter_config.json").is_file():
        return _engine("export.base_gguf", "run_base_gguf")(run_dir)
    return _engine("export.base_gguf", "converted_base_gguf")(base_source)


def is_adapter_gguf(path: str) -> bool:
    """Whether a .gguf file is a LoRA adapter (to apply to a base) rather than a whole model."""
    return _engine("export.gguf_export", "gguf_string")(Path(path), "general.type") == "adapter"


def _base_chat(base_source: str) -> Any:
    """The untouched base model for side-by-side chat (loaded without LoRA, through the engine's loader)."""
    chat = importlib.import_module("tunesmith.core.chat")
    factory = getattr(chat, "load_base_chat", None)
    if factory is not None:  # the engine's own way, once it has one
        return factory(base_source)
    config_module = importlib.import_module("tunesmith.core.config")
    hw = detect_hardware()
    # Full precision for chatting: 4-bit weights cannot be loaded without LoRA by the training loader.
    precision = ("bf16" if hw.supports_bf16 else "fp16") if hw.has_gpu else "fp32"
    model_cfg = config_module.ModelConfig(source=base_source, precision=precision, patch_kernels=False)
    lora = config_module.LoraSettings(enabled=False)
    loaded = _engine("models.loading", "load_for_training")(model_cfg, lora, hw)
    loaded.model.requires_grad_(False)
    loaded.model.eval()
    return _engine("chat", "TransformersChat")(loaded.model, loaded.tokenizer)


def placement(engine: Any) -> str:
    """Where a chat engine computes, in words: "llama.cpp on the GPU", "transformers on the CPU", ..."""
    switch = getattr(engine, "switch", None)  # a LoraSide: the shared base GGUF
    chat = switch.chat if switch is not None else engine
    if hasattr(chat, "gpu"):  # a llama.cpp engine (LlamaCppChat)
        return "llama.cpp on the GPU (all layers)" if chat.gpu else "llama.cpp on the CPU"
    model = getattr(chat, "model", None)
    device = getattr(model, "device", None)
    if device is not None:
        return f"transformers on the {'GPU' if getattr(device, 'type', '') == 'cuda' else 'CPU'}"
    return "unknown device"


def describe_error(error: BaseException) -> tuple[str, str]:
    """A message and a hint in words for any error the engine (or Python) raised."""
    hint = str(getattr(error, "hint", "") or "")
    message = str(error) or type(error).__name__
    if isinstance(error, FileNotFoundError):
        name = Path(getattr(error, "filename", "") or "").name
        message = f"File not found: {name or message}"
        hint = hint or "Check the path, or choose the file again."
    elif isinstance(error, MemoryError) or "out of memory" in message.lower():
        hint = hint or "Lower the batch size or max length, or turn on gradient checkpointing."
    return message, hint
