"""The engine calls behind the controller's background jobs, each importing its part of tunesmith.core
when called, so the window opens without torch.  Also turns any exception into (message, hint) for the
user.  Only the controller calls these.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real classes, for the types only: importing them here would load torch
    from tunesmith.core.chat import ChatSession, ChatSettings
    from tunesmith.core.chat.lora_switch import LoraSide
    from tunesmith.core.config import RunConfig
    from tunesmith.core.export import ExportResult
    from tunesmith.core.export.result import ProgressFn
    from tunesmith.core.hardware import HardwareInfo
    from tunesmith.core.vram import VramEstimate
    from tunesmith.desktop.logic.chat_models import LoraChoice, TunedModel


class ChatNotReady(RuntimeError):
    """A chat side the user has not set up yet (no model trained, no file chosen); the message says what
    to do first."""

    hint = "Set up this side of the chat first, as the message says."


def detect_hardware() -> HardwareInfo:
    """The engine's HardwareInfo for this machine."""
    from tunesmith.core.hardware import detect_hardware as detect

    return detect()


def estimate_vram(config: RunConfig, hardware: HardwareInfo) -> VramEstimate:
    """The engine's VramEstimate for `config` on `hardware`."""
    from tunesmith.core.vram import estimate_vram as estimate

    return estimate(config, hardware)


def export_run(
    run_dir: str,
    fmt: str,
    quant: str | None,
    output: str | None,
    on_progress: ProgressFn | None,
) -> ExportResult:
    """Export a run folder through the engine."""
    from tunesmith.core.export import export_run as export

    return export(run_dir, fmt, quant=quant, output=output, on_progress=on_progress)


def export_choices() -> tuple[dict[str, str], dict[str, str]]:
    """Export formats and GGUF types offered in the dialog, each with its words (the engine's tables)."""
    from tunesmith.core.export import EXPORT_FORMATS, GGUF_QUANTS

    return dict(EXPORT_FORMATS), dict(GGUF_QUANTS)


def chat_settings(values: dict) -> ChatSettings:
    """The engine's ChatSettings built from the Chat tab's plain values."""
    from tunesmith.core.chat import ChatSettings

    return ChatSettings(**values)


def chat_engine(
    side: str,
    tuned: TunedModel | None,
    base_source: str,
    gguf_path: str | None,
    run_dir: str | None,
    lora: LoraChoice | None = None,
) -> ChatSession:
    """A chat engine for one side of the Chat tab.

    "tuned": the model just trained (`tuned`: the training session's TunedModel), through the engine's
    transformers chat;
    "base": the untouched base model; "gguf": a GGUF file through llama.cpp;
    "adapter" / "base-gguf": the base GGUF with the LoRA adapter GGUF on / off, one model shared by
    both (`lora` is the chat session's LoraChoice).
    """
    if side == "tuned":
        if tuned is None or tuned.model is None:
            raise ChatNotReady("There is no trained model yet: train one in the Train tab first.")
        from tunesmith.core.chat.transformers_chat import TransformersChat

        return TransformersChat(tuned.model, tuned.tokenizer)
    if side == "gguf":
        if not gguf_path:
            raise ChatNotReady("Choose a GGUF file first.")
        from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat

        return LlamaCppChat(gguf_path)
    if side == "base":
        return _base_chat(base_source)
    if side in ("adapter", "base-gguf"):
        if lora is None:
            raise ValueError(f"chat side {side!r} needs the chat session's LoraChoice")
        return _lora_side(side, lora, run_dir, base_source)
    raise ValueError(f"unknown chat side {side!r}")


def _lora_side(side: str, lora: LoraChoice, run_dir: str | None, base_source: str) -> LoraSide:
    if side == "adapter" and not lora.path:
        raise ChatNotReady(
            "Choose a LoRA adapter GGUF first: export one (Export → LoRA adapter as GGUF) or open it."
        )
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.chat.lora_switch import LoraSwitch

    with lora.lock:  # both sides may be loading at once; the base GGUF is opened once
        if lora.switch is None:
            chat = LlamaCppChat(str(base_gguf(lora.run_dir or run_dir, base_source)))
            # The choice is read after the (slow) load: the user may have changed it meanwhile.
            lora.switch = LoraSwitch(chat, lora.path, lora.scale, lora.enabled)
        return lora.switch.side(tuned=side == "adapter")


def base_gguf(run_dir: str | None, base_source: str) -> Path:
    """The base model as a GGUF (converted once): the run's base and tokenizer when there is a run."""
    from tunesmith.core.export.base_gguf import converted_base_gguf, run_base_gguf

    if run_dir and (Path(run_dir) / "adapter" / "adapter_config.json").is_file():
        return run_base_gguf(run_dir)
    return converted_base_gguf(base_source)


def is_adapter_gguf(path: str) -> bool:
    """Whether a .gguf file is a LoRA adapter (to apply to a base) rather than a whole model."""
    from tunesmith.core.export.gguf_export import gguf_string

    return gguf_string(Path(path), "general.type") == "adapter"


def _base_chat(base_source: str) -> ChatSession:
    """The untouched base model for side-by-side chat (loaded without LoRA, through the engine's loader)."""
    from tunesmith.core.chat.transformers_chat import TransformersChat
    from tunesmith.core.config import LoraSettings, ModelConfig
    from tunesmith.core.models.loading import load_for_training

    hw = detect_hardware()
    # Full precision for chatting: 4-bit weights cannot be loaded without LoRA by the training loader.
    precision = ("bf16" if hw.supports_bf16 else "fp16") if hw.has_gpu else "fp32"
    model_cfg = ModelConfig(source=base_source, precision=precision, patch_kernels=False)
    loaded = load_for_training(model_cfg, LoraSettings(enabled=False), hw)
    loaded.model.requires_grad_(False)
    loaded.model.eval()
    return TransformersChat(loaded.model, loaded.tokenizer)


def placement(engine: object) -> str:
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
