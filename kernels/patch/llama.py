"""Llama-style families: Llama, Mistral and Qwen2 share module shapes (RMSNorm w * x, SiLU gated MLP,
rotate-half RoPE, GQA attention; Qwen2 adds q/k/v biases, Mistral a sliding window) and need nothing
beyond the shared forwards."""

from .families import FAMILIES, Family

FAMILIES["llama"] = Family("Llama")
FAMILIES["mistral"] = Family("Mistral")
FAMILIES["qwen2"] = Family("Qwen2")
