"""Next-token choice from fp32 logits: temperature, top-k, top-p, min-p, then a sample or the argmax.

Knows torch only.  Each filter is the one transformers' generate applies, in its order (temperature,
top-k, top-p, min-p; each keeps at least one token), so the distribution sampled from is the model's
under those settings.  The draw is the one torch.multinomial makes for a single sample: argmax of
p / E with E ~ Exp(1) per token (the exponential-race form of a categorical draw), written out so that
it has no host synchronisation and can run inside a captured CUDA graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sampling:
    """do_sample=False is greedy (the other fields are then ignored, as transformers does)."""

    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float | None = None


def warp(scores: torch.Tensor, s: Sampling) -> torch.Tensor:
    """The filtered scores [B, V] (removed tokens at -inf), as transformers' logits warpers give them."""
    if s.temperature != 1.0:
        scores = scores / s.temperature
    if s.top_k:
        k = min(max(int(s.top_k), 1), scores.shape[-1])
        kth = torch.topk(scores, k).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=False)
        cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        drop = cum <= (1 - s.top_p)
        drop[..., -1:] = False
        scores = scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    if s.min_p is not None:
        probs = torch.softmax(scores, dim=-1)
        drop = probs < s.min_p * probs.amax(dim=-1, keepdim=True)
        drop.scatter_(1, probs.argmax(dim=-1, keepdim=True), False)
        scores = scores.masked_fill(drop, float("-inf"))
    return scores


def next_tokens(logits: torch.Tensor, s: Sampling, generator: torch.Generator | None = None) -> torch.Tensor:
    """[B, V] fp32 logits -> [B] token ids."""
    if not s.do_sample:
        return logits.argmax(dim=-1)
    probs = torch.softmax(warp(logits, s), dim=-1)
    race = torch.empty_like(probs).exponential_(1, generator=generator)
    return probs.div_(race).argmax(dim=-1)


__all__ = ["Sampling", "next_tokens", "warp"]
