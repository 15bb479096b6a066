"""Choose the precision a run will really use, and say why when it differs from what was asked.

"auto" means: 4-bit NF4 on a CUDA GPU that supports bitsandbytes, else bf16 where the hardware has it,
else fp16 on older GPUs, and fp32 on the CPU (bf16 on the CPU is slow and gains nothing).  Choices that
cannot run here are replaced, with a note in plain words for the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunesmith.core.hardware import HardwareInfo


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "4bit" | "8bit" | "bf16" | "fp16" | "fp32"
    notes: list[str] = field(default_factory=list)

    @property
    def quantized(self) -> bool:
        return self.precision in ("4bit", "8bit")


def choose_precision(requested: str, hw: HardwareInfo) -> PrecisionChoice:
    notes: list[str] = []
    if hw.has_gpu and not hw.trainable_gpu:
        cc = ".".join(map(str, hw.compute_capability or ()))
        notes.append(
            f"{hw.gpu_name} has compute capability {cc}; training needs 7.0 or newer (RTX 20 series "
            "and later). Training will run on the CPU instead, which is slow."
        )
        return PrecisionChoice("fp32", notes)
    if requested == "auto":
        if hw.supports_4bit:
            return PrecisionChoice("4bit", notes)
        if hw.has_gpu:
            return PrecisionChoice("bf16" if hw.supports_bf16 else "fp16", notes)
        return PrecisionChoice("fp32", notes)
    if requested in ("4bit", "8bit") and not hw.has_gpu:
        notes.append(
            f"{requested} loading needs a CUDA GPU for useful speed; this machine has none, so the model "
            "is loaded in fp32 instead (same results, more memory)."
        )
        return PrecisionChoice("fp32", notes)
    if requested in ("4bit", "8bit") and hw.bitsandbytes_version is None:
        notes.append(f"{requested} needs the bitsandbytes package, which is not installed: using 16-bit.")
        return PrecisionChoice("bf16" if hw.supports_bf16 else "fp16", notes)
    if requested == "bf16" and not hw.supports_bf16:
        notes.append(f"{hw.gpu_name} has no bf16 support (needs an RTX 30 series or newer): using fp16.")
        return PrecisionChoice("fp16", notes)
    if requested == "fp16" and not hw.has_gpu:
        notes.append("fp16 training is not supported on the CPU: using fp32.")
        return PrecisionChoice("fp32", notes)
    return PrecisionChoice(requested, notes)
