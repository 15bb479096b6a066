"""Putting Tunesmith's kernels into a loaded transformers model: `patch_model` (apply), the families it
knows (families), the patched forwards (forwards), peft's LoRA layers as the kernels read them
(projections).  The only package of kernels/ that knows transformers' and peft's modules."""

from .apply import patch_model, unpatch_model
from .options import ComparisonOptions
from .report import PatchReport

__all__ = ["ComparisonOptions", "PatchReport", "patch_model", "unpatch_model"]
