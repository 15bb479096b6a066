"""Numbers and paths into short words for the UI: durations, progress lines, folders.  Pure functions, no Qt."""

from __future__ import annotations

import math
import os
from pathlib import Path

from tunesmith.core.events import Finished, StepMetrics


def format_duration(seconds: float | None) -> str:
    """0:42, 12:05, 1:02:03; '—' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(tokens_per_second: float | None) -> str:
    """'850 tokens/s', '12.3k tokens/s'."""
    if tokens_per_second is None or not math.isfinite(tokens_per_second):
        return "— tokens/s"
    if tokens_per_second >= 10_000:
        return f"{tokens_per_second / 1000:.1f}k tokens/s"
    return f"{tokens_per_second:.0f} tokens/s"


def progress_line(step: StepMetrics) -> str:
    """'Step 3 / 10 · loss 1.234 · 850 tokens/s · peak 5.8 GiB · ETA 0:42' from a step event (the
    peak: the most memory allocated since the previous step event; left out where none was measured)."""
    parts = [f"Step {step.step} / {step.total_steps}"]
    if math.isfinite(step.loss):
        parts.append(f"loss {step.loss:.3f}")
    parts.append(format_rate(step.tokens_per_second))
    if math.isfinite(step.peak_allocated_gb) and step.peak_allocated_gb > 0:
        parts.append(f"peak {step.peak_allocated_gb:.1f} GiB")
    parts.append(f"ETA {format_duration(step.eta_seconds)}")
    return " · ".join(parts)


def finished_line(event: Finished) -> str:
    """A sentence about how a run ended, from its Finished event."""
    loss = event.final_loss
    loss_text = f", final loss {loss:.3f}" if loss is not None and math.isfinite(loss) else ""
    if event.problem:  # the loss went wrong: the model is probably worse, so no "try it in Chat"
        return f"Ended at step {event.step}{loss_text}, but training did not work. {event.problem}"
    if event.cancelled:
        return f"Stopped at step {event.step}{loss_text}. A checkpoint was saved: press Resume to go on."
    return f"Finished at step {event.step}{loss_text}. Try the model in the Chat tab, or export it."


def friendly_path(path: str | Path, home: str | Path | None = None) -> str:
    """A folder as a person reads it: '~/Tunesmith/runs' under the home folder on Linux and macOS.

    Windows users know their folders by full path (C:\\Users\\…\\Documents), so it stays whole there.
    """
    text = str(path)
    if os.name == "nt":
        return text
    home_text = str(home if home is not None else Path.home()).rstrip("/")
    if home_text and (text == home_text or text.startswith(home_text + "/")):
        return "~" + text[len(home_text) :]
    return text


def format_plain_number(value: float) -> str:
    """A number as people write it on an axis or in a tooltip: '0', '0.5', '12', '1.25', and small or
    large ones in short scientific form: '2e-4', '1.5e-4', '3e5' (never a shared 'x1e-06' factor)."""
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def memory_line(used_gb: float, total_gb: float | None) -> str:
    """'2.1 of 23.5 GiB'; '2.1 GiB' without a total."""
    return f"{used_gb:.1f} of {total_gb:.1f} GiB" if total_gb else f"{used_gb:.1f} GiB"


def export_title(fmt: str, quant: str | None = None) -> str:
    """What an export makes, in words: 'GGUF file (Q8_0)', 'LoRA adapter', 'merged model'."""
    words = {
        "lora": "LoRA adapter",
        "merged": "merged model",
        "gguf": "GGUF file",
        "gguf-lora": "LoRA adapter as GGUF",
    }.get(fmt, fmt)
    return f"{words} ({quant.upper()})" if quant else words
