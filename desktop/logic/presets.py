"""The three presets, and which settings this machine cannot use.

Pure functions over `RunConfig` and the engine's HardwareInfo (no Qt); the Train tab and the model
panel use them.  Settings are addressed by dotted path, as in `settings_spec`.
"""

from __future__ import annotations

from typing import Any

from tunesmith.desktop.logic.settings_spec import get_value, set_value

PRESETS: dict[str, dict[str, Any]] = {
    "Quick test": {
        "train.epochs": 1.0,
        "train.max_steps": 30,
        "train.learning_rate": 2e-4,
        "lora.r": 8,
        "lora.alpha": 16,
        "data.max_length": 512,
        "train.batch_size": 2,
        "train.grad_accum": 1,
        "train.lr_scheduler": "linear",
        "train.warmup_ratio": 0.0,
    },
    "Balanced": {
        "train.epochs": 2.0,
        "train.max_steps": -1,
        "train.learning_rate": 2e-4,
        "lora.r": 16,
        "lora.alpha": 16,
        "data.max_length": 1024,
        "train.batch_size": 2,
        "train.grad_accum": 4,
        "train.lr_scheduler": "linear",
        "train.warmup_ratio": 0.03,
    },
    "Best quality": {
        "train.epochs": 3.0,
        "train.max_steps": -1,
        "train.learning_rate": 1e-4,
        "lora.r": 32,
        "lora.alpha": 32,
        "data.max_length": 2048,
        "train.batch_size": 2,
        "train.grad_accum": 8,
        "train.lr_scheduler": "cosine",
        "train.warmup_ratio": 0.05,
    },
}


def apply_preset(config: Any, name: str) -> None:
    """Overwrite the preset's settings in `config`; other settings stay as they are."""
    for path, value in PRESETS[name].items():
        set_value(config, path, value)


def matching_preset(config: Any) -> str | None:
    """The preset whose every value the config has, or None ("Custom")."""
    for name, values in PRESETS.items():
        if all(get_value(config, p) == v for p, v in values.items()):
            return name
    return None


def machine_limits(hardware: Any) -> dict[str, str]:
    """Settings and choices that cannot work on this machine -> the reason, in words.

    Keys are setting paths, or "path=value" for one choice of a setting.  `hardware` is the core's
    HardwareInfo, or None while it is still being detected (then nothing is limited).
    """
    if hardware is None:
        return {}
    limits: dict[str, str] = {}
    on_cuda = getattr(hardware, "device", "cpu") == "cuda"
    if not on_cuda:
        limits["train.optimizer=adamw_8bit"] = "8-bit Adam needs an NVIDIA GPU."
        limits["model.patch_kernels"] = "Tunesmith's fast kernels need an NVIDIA GPU."
        limits["model.precision=fp16"] = "16-bit float training needs a GPU."
    if not getattr(hardware, "supports_4bit", False):
        limits["model.precision=4bit"] = "4-bit loading is not supported on this machine."
        limits["model.precision=8bit"] = "8-bit loading is not supported on this machine."
    if not getattr(hardware, "supports_bf16", False):
        limits["model.precision=bf16"] = "This machine cannot compute in bfloat16."
    return limits
