"""What the patcher needs to know per model family: class names of its modules, the RMSNorm weight
form and the MLP activation.  One `Family` per config.model_type; the llama, qwen3 and gemma modules
add their entries to `FAMILIES`.
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
    # a checkpointed layer may skip the down projection (kernels.lora); False where a norm follows it
    mlp_residual_out: bool = True
    # the norm that reads the residual stream after the attention block, h = x + attention(norm(x)),
    # the attention's output entering the layer only through that sum: a recompute that is handed h
    # (kernels.offload.keep_for_recompute) need not form attention's o projection; None where a norm
    # reads the attention output itself (Gemma 2/3's post_attention_layernorm)
    residual_norm: str | None = "post_attention_layernorm"

    def classes(self) -> dict[str, str]:
        p = self.prefix
        return {
            f"{p}RMSNorm": "rms_norm",
            f"{p}Attention": "attention",
            f"{p}MLP": "mlp",
            f"{p}{self.causal_lm}": "causal_lm",
            f"{p}DecoderLayer": "decoder_layer",
        }


FAMILIES: dict[str, Family] = {}
