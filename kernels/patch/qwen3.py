"""Qwen3: Llama shapes plus RMSNorm on each head of q and k (q_norm, k_norm) before RoPE, which the
shared attention forward applies when the module has them (the norms themselves are patched too)."""

from .families import FAMILIES, Family

FAMILIES["qwen3"] = Family("Qwen3")
