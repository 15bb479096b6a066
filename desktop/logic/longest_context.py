"""The max-length preset "Longest that fits": core.context_plan's answer for the chosen model, method
and precision on this machine's card, in words, before anything is loaded.  Qt-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunesmith.core.config import RunConfig


@dataclass(frozen=True)
class LongestOffer:
    """The length to offer (None: none to offer) and the line that says why."""

    tokens: int | None
    text: str


def longest_offer(config: RunConfig, hardware: Any) -> LongestOffer:
    """What "Longest that fits" offers for `config` on `hardware` (the core's HardwareInfo, or None
    while it is being detected).  Reads only the model's config (core.models.model_shape)."""
    said = without_plan(config, hardware)
    if said is not None:
        return said
    from tunesmith.core.context_plan import longest_context
    from tunesmith.core.models.model_shape import shape_of

    shape = shape_of(config.model.source or "demo")
    plan = longest_context(
        shape,
        config.train.method,
        hardware.vram_free_gb,  # what a run will have: the desktop's share of the card is not
        hardware.ram_total_gb,
        precision=_precision(config, hardware),
        lora_r=config.lora.r,
        targets=tuple(config.lora.target_modules),
    )
    return LongestOffer((plan.offered or None) if plan.covered else None, plan.words())


def without_plan(config: RunConfig, hardware: Any) -> LongestOffer | None:
    """The answer when there is no length to work out (no GPU, GRPO, ...), at once; None when there is."""
    if hardware is None:
        return LongestOffer(None, "Longest that fits: known once this machine's GPU is detected.")
    if not getattr(hardware, "has_gpu", False):
        return LongestOffer(
            None,
            "Longest that fits: this machine has no NVIDIA GPU, so training runs on the CPU, where time "
            "rather than memory sets the length. There is no card to plan for.",
        )
    method = config.train.method
    if method == "grpo":
        return LongestOffer(None, "Longest that fits: GRPO's length is set by its prompt and answer lengths.")
    if method == "ppo":  # in the method list only to say why it is not offered
        return LongestOffer(None, "Longest that fits: PPO is not offered (see the note under Method).")
    if not config.lora.enabled:
        return LongestOffer(None, "Longest that fits: planned for LoRA and QLoRA; full fine-tuning is not.")
    if _precision(config, hardware) == "fp32":
        return LongestOffer(
            None, "Longest that fits: planned for 4-bit, 8-bit and 16-bit weights, not 32-bit."
        )
    return None


def _precision(config: RunConfig, hardware: Any) -> str:
    precision = config.model.precision
    if precision == "auto":  # as core.models.precision chooses on a GPU
        return "4bit" if getattr(hardware, "supports_4bit", False) else "bf16"
    return precision
