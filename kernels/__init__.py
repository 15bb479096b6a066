"""Tunesmith's Triton training kernels and the patching that puts them into transformers models.

The op modules (rms_norm, rope, swiglu, cross_entropy, nf4, lora, offload) know torch and triton only;
`tunesmith.kernels.patch` is the one place that knows transformers', peft's and bitsandbytes' modules.
"""

from .cross_entropy import fused_linear_cross_entropy
from .rms_norm import add_rms_norm, rms_norm
from .rope import rope
from .swiglu import geglu, swiglu

__all__ = ["add_rms_norm", "fused_linear_cross_entropy", "geglu", "rms_norm", "rope", "swiglu"]
