"""Tunesmith's Triton training kernels and the patching that puts them into transformers models.

The op modules (rms_norm, rope, swiglu, cross_entropy, nf4, lora, attention, offload, host_memory, ...)
know torch and triton only; `tunesmith.kernels.patch` is the one place that knows transformers', peft's and
bitsandbytes' modules.  Importing this package imports neither transformers nor peft.

Typical use, on a loaded (QLoRA) model, before or after peft wraps it:

    report = patch_model(model, checkpointing="offload", embeddings_on_cpu=True)  # what the engine does
    ...train...
    report.revert()                                        # or unpatch_model(model)

Exactness: every op is tested against plain PyTorch (tests/kernels); the patched models' loss and
LoRA gradients equal the stock ones to rounding.  Speed and memory: BENCHMARKS.md.
"""

from ._launch import FLOAT_DTYPES as COMPUTE_DTYPES  # fp16 (with loss scaling), bf16, fp32: all tested
from .memory.offload import offloaded_checkpoint
from .ops.attention import attention
from .ops.cross_entropy import fused_linear_cross_entropy
from .ops.glu import geglu, swiglu
from .ops.log_probs import TokenLogProbs, fused_linear_log_probs
from .ops.lora import LoRAProj, lora_linear, lora_qkv
from .ops.lora_mlp import lora_mlp
from .ops.nf4 import NF4Weight, dequantize_nf4
from .ops.rms_norm import add_rms_norm, rms_norm
from .ops.rope import rope
from .patch import PatchReport, patch_model, unpatch_model

__all__ = [
    "COMPUTE_DTYPES",
    "LoRAProj",
    "PatchReport",
    "TokenLogProbs",
    "NF4Weight",
    "add_rms_norm",
    "attention",
    "dequantize_nf4",
    "fused_linear_cross_entropy",
    "fused_linear_log_probs",
    "geglu",
    "lora_linear",
    "lora_mlp",
    "lora_qkv",
    "offloaded_checkpoint",
    "patch_model",
    "rms_norm",
    "rope",
    "swiglu",
    "unpatch_model",
]
