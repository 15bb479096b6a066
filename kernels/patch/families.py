"""Every model family Tunesmith patches, in one table keyed by config.model_type: the class names of its
modules, the RMSNorm weight form, the MLP activation, what a layer's recompute may skip, and whether the
fast rollout step (kernels.decode) computes it.  A model_type missing here is left to stock transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

# transformers' activation names -> the GLU kernel's
ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "gelu": "gelu",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
}


@dataclass(frozen=True)
class Family:
    """Module class names of one model family and how its pieces compute."""

    prefix: str  # class-name prefix, e.g. "Llama"
    norm_offset: float = 0.0  # 1.0 for Gemma's (1 + w) RMSNorm
    act_attr: str = "hidden_act"  # config attribute naming the MLP activation
    causal_lm: str = "ForCausalLM"
    # the decoder layer only adds the MLP's output to the residual (out = r + mlp(x)): the recompute of
    # a checkpointed layer may skip the down projection (kernels.ops.lora); False where a norm follows it
    mlp_residual_out: bool = True
    # the norm that reads the residual stream after the attention block, h = x + attention(norm(x)),
    # the attention's output entering the layer only through that sum: a recompute that is handed h
    # (kernels.memory.offload.keep_for_recompute) need not form attention's o projection; None where a norm
    # reads the attention output itself (Gemma 2/3's post_attention_layernorm)
    residual_norm: str | None = "post_attention_layernorm"
    # the fast rollout step (kernels.decode.decoder) computes this family exactly
    fast_decode: bool = False

    def classes(self) -> dict[str, str]:
        p = self.prefix
        return {
            f"{p}RMSNorm": "rms_norm",
            f"{p}Attention": "attention",
            f"{p}MLP": "mlp",
            f"{p}{self.causal_lm}": "causal_lm",
            f"{p}DecoderLayer": "decoder_layer",
        }


FAMILIES: dict[str, Family] = {
    # Llama-style: Llama, Mistral and Qwen2 share module shapes (RMSNorm w * x, SiLU gated MLP,
    # rotate-half RoPE, GQA attention; Qwen2 adds q/k/v biases, Mistral a sliding window).
    "llama": Family("Llama", fast_decode=True),
    "mistral": Family("Mistral", fast_decode=True),
    "qwen2": Family("Qwen2", fast_decode=True),
    # Qwen3: Llama shapes plus RMSNorm on each head of q and k (q_norm, k_norm) before RoPE, which the
    # shared attention forward applies when the module has them.
    "qwen3": Family("Qwen3", fast_decode=True),
    # Gemma 2 and Gemma 3 (text): RMSNorm with a (1 + w) weight, GeGLU with tanh GELU
    # (config.hidden_activation), query_pre_attn_scalar scaling, sliding windows, Gemma 2's logit
    # soft-capping (the fused cross-entropy applies the final one), Gemma 3's q/k norms.  Their layers
    # norm the MLP output (post_feedforward_layernorm), whose backward needs it, so the recompute keeps
    # the down projection, and norm the attention output (post_attention_layernorm), so it keeps the o
    # projection.  Gemma 3 multimodal ("gemma3") would need Gemma3ForConditionalGeneration's
    # language-model path and is not covered.
    "gemma2": Family(
        "Gemma2", norm_offset=1.0, act_attr="hidden_activation", mlp_residual_out=False, residual_norm=None
    ),
    "gemma3_text": Family(
        "Gemma3", norm_offset=1.0, act_attr="hidden_activation", mlp_residual_out=False, residual_norm=None
    ),
}
