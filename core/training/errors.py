"""Turn exceptions from a run into a message a person understands and a hint of what to change."""

from __future__ import annotations

from tunesmith.core.config import ConfigError, RunConfig


def explain(exc: BaseException, config: RunConfig) -> tuple[str, str]:
    """(message, hint) for an exception raised while setting up or running training."""
    import torch

    from tunesmith.core.data.validation import DatasetError
    from tunesmith.core.models.sources import ModelSourceError

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
        return str(exc), (shown + more) if shown else "Check the dataset file and its format."
    if isinstance(exc, ModelSourceError):
        return str(exc), "Pick another model, or check the path."
    if isinstance(exc, ConfigError):
        return f"Invalid setting: {exc}", "Fix the setting and start again."
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return str(exc), "Check the settings named above."
    return f"Training stopped because of an unexpected error: {type(exc).__name__}: {exc}", (
        "The run's log holds the details; checkpoints already written are kept."
    )
