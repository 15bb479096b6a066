"""Turn exceptions from a run into a message a person understands and a hint of what to change.

Messages that name settings are worded by the caller's `name` (CLI flags on the CLI, the config's
dotted paths by default); library errors that mean a damaged model file are said in those words.
"""

from __future__ import annotations

from collections.abc import Callable

from tunesmith.core.config import ConfigError, RunConfig, worded


def explain(
    exc: BaseException, config: RunConfig, name: Callable[[str], str] = lambda setting: setting
) -> tuple[str, str]:
    """(message, hint) for an exception raised while setting up or running training."""
    import torch

    from tunesmith.core.data.validation import DatasetError
    from tunesmith.core.models.sources import ModelSourceError
    from tunesmith.core.training.model_files import DAMAGED
    from tunesmith.core.training.rewards import RewardFileError

    if type(exc).__name__ == "HostMemoryShort":  # kernels.memory.host_budget's (not imported: needs Triton)
        return str(exc), getattr(exc, "hint", "")
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        t = config.train
        hints = [f"lower the batch size (now {t.batch_size}; raise gradient accumulation to compensate)"]
        hints.append(f"lower the max sequence length (now {config.data.max_length})")
        if not t.gradient_checkpointing:
            hints.append("turn gradient checkpointing on")
        if config.model.precision not in ("4bit", "auto"):
            hints.append("load the model in 4-bit")
        return "The GPU ran out of memory during training.", "To fit: " + "; or ".join(hints) + "."
    if isinstance(exc, DatasetError):
        shown = "\n".join(str(p) for p in exc.problems[:20])
        more = f"\n… and {len(exc.problems) - 20} more" if len(exc.problems) > 20 else ""
        return worded(exc, name), (shown + more) if shown else "Check the dataset file and its format."
    if isinstance(exc, ModelSourceError):
        if DAMAGED in str(exc):
            return str(exc), "The file was probably cut short while downloading; or pick another model."
        return str(exc), "Pick another model, or check the path."
    if _is_damaged_weights(exc):
        return f"{config.model.source}: {DAMAGED}", "The file was probably cut short while downloading."
    if isinstance(exc, ConfigError):
        return f"Invalid setting: {worded(exc, name)}", "Fix the setting and start again."
    if isinstance(exc, RewardFileError):
        return str(exc), "Fix your reward file and start again."
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return str(exc), "Check the settings named above."
    return f"Training stopped because of an unexpected error: {type(exc).__name__}: {exc}", (
        "The run's log holds the details; checkpoints already written are kept."
    )


def _is_damaged_weights(exc: BaseException) -> bool:
    """safetensors' own error (a cut-short or overwritten file), wherever in the chain it was raised."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if type(link).__name__ == "SafetensorError" or "Error while deserializing header" in str(link):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False
