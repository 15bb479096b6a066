"""Estimate the GPU memory a run needs before anything is loaded, and say whether it fits.

Reads only the model's config.json (parameter count from its shapes), the precision and the training
settings.  The estimate adds the parts people can act on — weights, LoRA and optimizer state,
activations, the logits of the loss, and a fixed CUDA overhead — so the warning can say which
setting to lower.  It is an estimate for planning, not a measurement.

On a GPU with Tunesmith's kernels (config.model.patch_kernels, a family they know) it counts what the
engine then does (core.models.loading): layer inputs checkpointed to host memory, the frozen input
embedding table in host memory, the loss in chunks without full logits; BENCHMARKS.md compares it
with a measured peak.  Without a GPU (the welcome's reference sizes) it counts stock transformers: the cautious side.
Activations and logits are counted in the run's compute dtype (`core.models.precision.compute_dtype_for`:
2 bytes for bf16 or fp16, 4 for fp32 weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.config import RunConfig
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.models.precision import ComputeDtype, choose_precision, compute_dtype_for

GIB = 1024**3
BYTES_PER_WEIGHT = {"4bit": 0.5 + 0.0625, "8bit": 1.0 + 0.03, "bf16": 2.0, "fp16": 2.0, "fp32": 4.0}
CUDA_OVERHEAD_GB = 0.6  # CUDA context, cuBLAS workspaces and allocator slack


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied_embeddings: bool
    model_type: str | None = None  # config.json's model_type: whether Tunesmith's kernels apply
    # The length the model was trained for (max_position_embeddings, a GGUF's context_length); None: unknown
    trained_context: int | None = None

    @property
    def parameters(self) -> int:
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        mlp = 3 * self.hidden * self.intermediate
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * (attention + mlp + 2 * self.hidden) + embeddings + self.hidden  # + final norm

    def lora_parameters(self, r: int, targets: list[str]) -> int:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        dims = {
            "q_proj": (self.hidden, q),
            "k_proj": (self.hidden, kv),
            "v_proj": (self.hidden, kv),
            "o_proj": (q, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }
        return self.layers * sum(r * (i + o) for name, (i, o) in dims.items() if name in targets)


@dataclass(frozen=True)
class VramEstimate:
    total_gb: float
    parts: dict[str, float] = field(default_factory=dict)
    available_gb: float | None = None
    fits: bool = True
    message: str = ""


def model_shape(config: dict[str, Any]) -> ModelShape:
    text = config.get("text_config", config)  # multimodal configs nest the language model
    hidden = int(text["hidden_size"])
    heads = int(text["num_attention_heads"])
    return ModelShape(
        hidden=hidden,
        intermediate=int(text.get("intermediate_size", 4 * hidden)),
        layers=int(text["num_hidden_layers"]),
        vocab=int(text["vocab_size"]),
        heads=heads,
        kv_heads=int(text.get("num_key_value_heads") or heads),
        head_dim=int(text.get("head_dim") or hidden // heads),
        tied_embeddings=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
        model_type=text.get("model_type", config.get("model_type")),
        trained_context=_positive_int(text.get("max_position_embeddings")),
    )


def _positive_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def kernels_will_run(config: RunConfig, hardware: HardwareInfo | None, model_type: str | None) -> bool:
    """Whether the engine will train with Tunesmith's kernels: on a CUDA GPU, patch_kernels on, a model
    family the kernels know (kernels.patch.families)."""
    if not (hardware is not None and hardware.has_gpu and config.model.patch_kernels and model_type):
        return False
    from tunesmith.kernels.patch.families import FAMILIES  # imports torch and triton: on a GPU only

    return model_type in FAMILIES


def estimate_vram(
    config: RunConfig, hardware: HardwareInfo | None = None, model_dir: str | Path | None = None
) -> VramEstimate:
    from tunesmith.core.models.sources import resolve_dense_model_dir

    folder = Path(model_dir) if model_dir else resolve_dense_model_dir(config.model.source)
    shape = model_shape(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    precision = (
        choose_precision(config.model.precision, hardware).precision if hardware else config.model.precision
    )
    precision = "4bit" if precision == "auto" else precision
    return estimate_for_shape(shape, precision, config, hardware)


def estimate_for_shape(
    shape: ModelShape, precision: str, config: RunConfig, hardware: HardwareInfo | None
) -> VramEstimate:
    t, data = config.train, config.data
    tokens = t.batch_size * data.max_length
    kernels = kernels_will_run(config, hardware, shape.model_type)
    # activations per element, relative to the 2 bytes of a 16-bit float the constants below count
    widen = _compute_dtype(precision, hardware).itemsize / 2
    # bitsandbytes quantizes the linear layers only: the embedding table(s) stay 16-bit; with the
    # kernels a frozen, untied input table lives in host memory (patch_model(embeddings_on_cpu=True))
    table = shape.vocab * shape.hidden
    tables = 1 if shape.tied_embeddings else 2
    linear = shape.parameters - tables * table
    table_bytes = 2.0 if precision in ("4bit", "8bit") else BYTES_PER_WEIGHT[precision]
    tables_on_gpu = tables - (1 if kernels and config.lora.enabled and not shape.tied_embeddings else 0)
    weights = (linear * BYTES_PER_WEIGHT[precision] + tables_on_gpu * table * table_bytes) / GIB
    if config.lora.enabled:
        trainable = shape.lora_parameters(config.lora.r, config.lora.target_modules)
    else:
        trainable = shape.parameters
    optimizer_bytes = 2 if t.optimizer == "adamw_8bit" else 8  # two moments
    # fp32 master copy of trainable weights (LoRA) + their gradients + optimizer moments.
    training_state = trainable * (4 + 4 + optimizer_bytes) / GIB
    checkpointing = t.gradient_checkpointing is not False
    # Per token and layer: ~34 * hidden bytes kept without checkpointing; with it, one bf16 input per layer
    # plus one layer's worth recomputed at a time.  The kernels' checkpointing keeps the inputs in host
    # memory.
    per_layer = (0 if kernels else 2 * shape.hidden) if checkpointing else 34 * shape.hidden
    activations = widen * tokens * (shape.layers * per_layer + 34 * shape.hidden) / GIB
    if kernels:  # the fused loss: one chunk of 16-bit logits (kernels.ops.cross_entropy), then its gradient
        logits = widen * min(tokens * shape.vocab, 1 << 26) * 2 * 2 / GIB
    else:
        logits = tokens * shape.vocab * 4 * 2 / GIB  # fp32 logits and their gradient
    if kernels and checkpointing and config.lora.enabled and precision != "fp32":
        # the arithmetic of the max length's "Longest that fits" (core.context_plan), so the preset it
        # offers is one this estimate says fits: one layer's backward per token, a loss chunk, the
        # weights with double quantization and one layer dequantized
        from tunesmith.core.context_plan import activations_gib, fixed_gpu_parts

        fixed = fixed_gpu_parts(shape, precision, config.lora.r, tuple(config.lora.target_modules))
        weights = fixed["weights"] + fixed["output head"] + fixed["one layer's weights, dequantized"]
        assert hardware is not None  # kernels run on a GPU only
        ram = hardware.ram_total_gb or 16.0
        activations = widen * activations_gib(shape, tokens, hardware.vram_free_gb, ram, sum(fixed.values()))
        logits = widen * fixed["loss chunk"]
    parts = {
        "weights": weights,
        "adapter + optimizer": training_state,
        "activations": activations,
        "logits": logits,
        "CUDA overhead": CUDA_OVERHEAD_GB,
    }
    if (
        t.method == "grpo" and t.reward_model
    ):  # beside the policy, in its compute dtype (training.reward_model)
        from tunesmith.core.training.reward_model import reward_model_bytes

        itemsize = _compute_dtype(precision, hardware).itemsize
        parts["reward model"] = reward_model_bytes(t.reward_model, itemsize) / GIB
    total = sum(parts.values())
    if hardware is None or not hardware.has_gpu:
        return VramEstimate(total, parts, None, True, f"About {total:.1f} GiB would be needed on a GPU.")
    available = hardware.vram_free_gb
    fits = total <= available * 0.95
    if fits:
        message = f"Needs about {total:.1f} GiB of {available:.1f} GiB free: fits."
    else:
        biggest = max(parts, key=lambda name: parts[name])
        message = (
            f"Needs about {total:.1f} GiB but only {available:.1f} GiB is free: will not fit. The largest part "
            f"is {biggest} ({parts[biggest]:.1f} GiB); " + _advice(biggest)
        )
    return VramEstimate(total, parts, available, fits, message)


def _compute_dtype(precision: str, hardware: HardwareInfo | None) -> ComputeDtype:
    """The run's compute dtype on this GPU; without one, what a GPU with bf16 would use."""
    if hardware is not None and hardware.has_gpu:
        return compute_dtype_for(hardware, precision)
    return ComputeDtype("fp32" if precision == "fp32" else "bf16")


def _advice(part: str) -> str:
    return {
        "weights": "load the model in 4-bit or pick a smaller model.",
        "adapter + optimizer": "use LoRA (not full fine-tuning), a lower rank or 8-bit AdamW.",
        "activations": "lower the batch size or max length, or turn gradient checkpointing on.",
        "logits": "lower the batch size or max length.",
        "reward model": "pick a smaller reward model.",
    }.get(part, "pick a smaller model.")
