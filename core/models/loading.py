"""Load a model for training: the chosen precision, LoRA adapters, and our kernels when on CUDA.

Takes a `ModelConfig` and `LoraSettings`, returns the model, its tokenizer, the compute dtype the trainer
must use (`core.models.precision.compute_dtype_for`: bf16, or fp16 with loss scaling on GPUs without
bf16) and notes for the user.
It knows how to call transformers, bitsandbytes and peft; it does not know about datasets or trainers.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunesmith.core.config import LoraSettings, ModelConfig
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.models.precision import ComputeDtype, PrecisionChoice, choose_precision, compute_dtype_for
from tunesmith.core.models.sources import resolve_dense_model_dir

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tunesmith.kernels.patch import PatchReport

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: PreTrainedModel | PeftModel  # a PeftModel when LoRA is on
    tokenizer: PreTrainedTokenizerBase
    precision: str
    device: str
    notes: list[str] = field(default_factory=list)
    kernel_report: PatchReport | None = None  # None: the kernels were not patched in
    compute: ComputeDtype = ComputeDtype("fp32")  # what the trainer computes in (its bf16/fp16 flags)

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters."""
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.model.parameters())
        return trainable, total


def load_for_training(
    model_cfg: ModelConfig, lora: LoraSettings, hw: HardwareInfo, checkpointing: bool | None = None
) -> LoadedModel:
    """checkpointing: None = on for GPUs (as the trainer decides); with kernels it offloads to host RAM."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    choice = choose_precision(model_cfg.precision, hw)
    compute = compute_dtype_for(hw, choice.precision)
    folder = resolve_dense_model_dir(model_cfg.source)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=model_cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if hw.has_gpu and hw.trainable_gpu else "cpu"
    kwargs = _load_kwargs(choice, compute, full_finetune=not lora.enabled)
    base = AutoModelForCausalLM.from_pretrained(
        str(folder), trust_remote_code=model_cfg.trust_remote_code, use_safetensors=True, **kwargs
    )
    if device == "cuda" and not choice.quantized:
        # functools.wraps on PreTrainedModel.to hides from mypy that the method binds self
        base.to(device)  # type: ignore[arg-type]
    base.config.use_cache = False  # the KV cache is useless while training and costs memory
    notes = list(choice.notes) + _compute_notes(choice, compute, hw, lora.enabled)
    if choice.quantized and not lora.enabled:
        raise ValueError(
            f"Full fine-tuning cannot train {choice.precision} weights: turn LoRA on, or pick bf16/fp32."
        )
    model: PreTrainedModel | PeftModel = base
    if lora.enabled:
        from tunesmith.core.models.adapter_switch import install_fast_adapter_switch

        model = _add_lora(base, lora, model_cfg.source)
        install_fast_adapter_switch(model)  # DPO's reference pass switches adapters every step
    else:
        base.requires_grad_(True)
    report = None
    if model_cfg.patch_kernels and device == "cuda":
        report = _patch_kernels(model, notes, checkpointing is not False, compute)
    log.info("Loaded %s in %s on %s, computing in %s", folder.name, choice.precision, device, compute.name)
    return LoadedModel(model, tokenizer, choice.precision, device, notes, report, compute)


def _compute_notes(choice: PrecisionChoice, compute: ComputeDtype, hw: HardwareInfo, lora: bool) -> list[str]:
    """Say so when an older GPU makes the run compute in fp16 rather than bf16."""
    notes = []
    if compute.fp16_amp and choice.quantized and not hw.supports_bf16:
        notes.append(
            f"{hw.gpu_name} has no bf16 support: the {choice.precision} model computes in fp16 "
            "with loss scaling (same results, an occasional skipped step if a gradient overflows)."
        )
    if compute.fp16_amp and not lora:
        notes.append(
            "Full fine-tuning in fp16 keeps the weights in fp32 (loss scaling cannot update fp16 weights) "
            "and computes in fp16: twice the weight memory of LoRA's frozen fp16 copy."
        )
    return notes


def _load_kwargs(choice: PrecisionChoice, compute_dtype: ComputeDtype, full_finetune: bool) -> dict[str, Any]:
    import torch

    compute = compute_dtype.torch_dtype
    if choice.precision == "4bit":
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        return {"quantization_config": quant, "dtype": compute, "device_map": {"": _this_card()}}
    if choice.precision == "8bit":
        from transformers import BitsAndBytesConfig

        return {
            "quantization_config": BitsAndBytesConfig(load_in_8bit=True),
            "dtype": compute,
            "device_map": {"": _this_card()},
        }
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[choice.precision]
    if choice.precision == "fp16" and full_finetune:  # fp32 master weights, fp16 autocast
        dtype = torch.float32
    return {"dtype": dtype}


def _this_card() -> int:
    """The CUDA card this process trains on: its own under several ranks (rank_main sets it), else 0."""
    import torch

    return torch.cuda.current_device() if torch.cuda.is_available() else 0


def _add_lora(model: PreTrainedModel, lora: LoraSettings, source: str = "") -> PeftModel:
    from peft import LoraConfig, get_peft_model

    if lora.init_adapter:  # continue an earlier run's adapter (checked and loaded by init_adapter)
        from tunesmith.core.models.init_adapter import load_init_adapter

        return load_init_adapter(model, lora, source)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in lora.target_modules if t in present]
    missing = sorted(set(lora.target_modules) - present)
    if not targets:
        raise ValueError(
            f"lora.target_modules: none of {', '.join(lora.target_modules)} exist in this model; "
            f"its layers are named e.g. {', '.join(sorted(present)[:8])}"
        )
    if missing:
        log.warning("LoRA targets not in this model, skipped: %s", ", ".join(missing))
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        use_rslora=lora.use_rslora,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _patch_kernels(
    model: PreTrainedModel | PeftModel, notes: list[str], checkpointing: bool, compute: ComputeDtype
) -> PatchReport | None:
    from tunesmith.core.capabilities import kernel_build_problem

    # Triton compiles its launchers at the first training step, not here: check for a C compiler
    # and Python's headers now, so a missing one means stock transformers instead of a failed step.
    problem = kernel_build_problem()
    if problem:
        notes.append(problem)
        return None
    try:
        from tunesmith.kernels import COMPUTE_DTYPES, patch_model
    except ImportError as exc:
        notes.append(f"Tunesmith's kernels are unavailable ({exc}); training with stock transformers.")
        return None
    if compute.torch_dtype not in COMPUTE_DTYPES:
        notes.append(
            f"Tunesmith's kernels do not compute in {compute.name}; training with stock transformers."
        )
        return None
    try:
        # "offload": checkpointed layer inputs (and what their recompute can reuse, within a quarter
        # of the RAM) wait in pinned host memory, and survive TRL's later gradient_checkpointing_enable().
        # On a GPU the frozen input embedding table moves to pinned host memory too, where the GPU
        # gathers its rows in place: 1 GiB less VRAM for an 8B model, at no cost in speed (bench/HISTORY.md, run 11).
        on_gpu = next(model.parameters()).device.type == "cuda"
        # One rank of several (core.training.multi_gpu): DDP needs all weights on one kind of device.
        one_process = int(os.environ.get("WORLD_SIZE", "1")) <= 1
        return patch_model(
            model,
            checkpointing="offload" if checkpointing else None,
            embeddings_on_cpu=on_gpu and one_process,
        )
    except Exception as exc:  # a C compiler or Triton problem must not stop training
        log.exception("Kernel patching failed")
        notes.append(f"Tunesmith's kernels could not be used ({exc}); training with stock transformers.")
        return None
