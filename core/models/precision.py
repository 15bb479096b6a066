"""Choose the precision a run will really use, and say why when it differs from what was asked.

"auto" means: 4-bit NF4 on a CUDA GPU that supports bitsandbytes, else bf16 where the hardware has it,
else fp16 on older GPUs, and fp32 on the CPU (bf16 on the CPU is slow and gains nothing).  Choices that
cannot run here are replaced, with a note in plain words for the user.

`compute_dtype_for` is the one place that decides the dtype the run *computes* in once the storage
precision is chosen (4-bit and 8-bit weights compute in a 16-bit float too), and whether the trainer
scales the loss: bf16 where the GPU has it (Ampere, compute capability 8.0, and newer), else fp16 with
loss scaling (T4, V100, RTX 20xx), fp32 on the CPU.  Model loading, the trainer's flags, the kernels'
patch and the VRAM estimate all read it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tunesmith.core.hardware import HardwareInfo

if TYPE_CHECKING:
    import torch


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


@dataclass(frozen=True)
class ComputeDtype:
    """The float type a run computes in, and how the trainer treats it.

    fp16 has 5 exponent bits: small gradients underflow to zero unless the loss is multiplied up before
    the backward and the gradients divided back (the Trainer's fp16=True: autocast plus a GradScaler,
    which skips the rare step that overflowed).  bf16 has fp32's range and needs no scaling.
    """

    name: str  # "bf16" | "fp16" | "fp32"

    @property
    def fp16_amp(self) -> bool:
        """fp16 autocast with loss scaling (TRL/Trainer fp16=True)."""
        return self.name == "fp16"

    @property
    def bf16_amp(self) -> bool:
        """bf16 autocast (TRL/Trainer bf16=True)."""
        return self.name == "bf16"

    @property
    def itemsize(self) -> int:
        """Bytes per activation element."""
        return 4 if self.name == "fp32" else 2

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.name]


def compute_dtype_for(hardware: HardwareInfo, precision: str) -> ComputeDtype:
    """The compute dtype for a model stored in `precision` (as chosen by `choose_precision`) on this
    hardware: fp32 on the CPU (or a GPU too old to train on) and for fp32 weights; otherwise bf16 where
    the GPU supports it, else fp16 with loss scaling, whatever the weights are stored in."""
    if not (hardware.has_gpu and hardware.trainable_gpu) or precision == "fp32":
        return ComputeDtype("fp32")
    if precision == "fp16" or not hardware.supports_bf16:
        return ComputeDtype("fp16")
    return ComputeDtype("bf16")
