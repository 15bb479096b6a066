"""Gemma 2 and Gemma 3 (text): RMSNorm with a (1 + w) weight, GeGLU with tanh GELU
(config.hidden_activation), attention with query_pre_attn_scalar scaling, sliding windows, Gemma 2's
attention logit soft-capping and final logit soft-capping (handled by the fused cross-entropy), and
Gemma 3's q/k norms.  Their decoder layers apply post_feedforward_layernorm to the MLP output, whose
backward needs that output, so the recompute keeps the down projection (mlp_residual_out=False), and
post_attention_layernorm to the attention output, so it keeps the o projection (residual_norm=None).
Gemma 3 multimodal (model_type "gemma3") is not covered: its text part would
need the language-model path of Gemma3ForConditionalGeneration."""

from .families import FAMILIES, Family

FAMILIES["gemma2"] = Family(
    "Gemma2", norm_offset=1.0, act_attr="hidden_activation", mlp_residual_out=False, residual_norm=None
)
FAMILIES["gemma3_text"] = Family(
    "Gemma3", norm_offset=1.0, act_attr="hidden_activation", mlp_residual_out=False, residual_norm=None
)
