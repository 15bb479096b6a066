"""Fast decoding for GRPO rollouts: a KV-cached, CUDA-graph-captured step over the patched model's own
weights (generator, decoder), the fused attention prologue (prologue), the few-row NF4 matmul
(nf4_matmul) and sampling.  Used by core.training.rollout; not part of training's backward."""

from .generator import FastGenerator, UnsupportedModel, generate
from .sampling import Sampling

__all__ = ["FastGenerator", "Sampling", "UnsupportedModel", "generate"]
