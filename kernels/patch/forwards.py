"""Replacement forward methods for the module kinds the families share: RMSNorm, attention, gated MLP
and the causal-LM head with its loss.

Knows transformers' module attributes (head_dim, scaling, q_norm/k_norm, sliding_window,
attn_logit_softcapping, config._attn_implementation, final_logit_softcapping, the attention-function
registry).  Each forward falls back to the stock one (`module._tunesmith_stock`) when it meets
something it does not handle: a KV cache (generation), adapters it cannot fuse, logits requested by
the caller.  Attention on plain causal or full attention runs through ops.attention and, in the first
forward of a checkpointed layer, stashes its output, log-sum-exp, rotated q/k/v and the residual sum
for the recompute (memory.offload.keep_for_recompute); anything else calls the model's own attention
function.  What is stashed where and why: kernels/DESIGN.md.
"""

from __future__ import annotations

import functools
import sys

import torch
import torch.nn.functional as F

from ..memory.offload import (
    is_kept,
    keep_for_recompute,
    keeping,
    kept_for_recompute,
    recomputing,
    with_kept_value,
)
from ..ops.attention import Saved, attention, attention_forward_only
from ..ops.cross_entropy import fused_linear_cross_entropy
from ..ops.glu import GLUFunction
from ..ops.lora import KeptQKV, LoRAProj, lora_linear, lora_qkv, lora_qkv_kept
from ..ops.lora_mlp import lora_mlp
from ..ops.rms_norm import rms_norm
from ..ops.rope import can_rope_inplace, rope, rope_, rope_half
from .projections import lora_proj_of


def norm_forward(self, hidden_states):
    """RMSNorm; `_tunesmith_offset` is 0 (w) or 1 (Gemma's 1 + w).  The norm that reads a layer's
    residual stream after its attention block (`_tunesmith_kept_input`, set by patch_model) keeps that
    input for the layer's recompute, which uses the kept value (see attention_forward)."""
    key = self.__dict__.get("_tunesmith_kept_input")
    if key is not None:
        hidden_states = _residual_for_recompute(key, hidden_states)
    eps = getattr(self, "variance_epsilon", getattr(self, "eps", 1e-6))
    return rms_norm(hidden_states, self.weight, eps, self._tunesmith_offset)


def _residual_for_recompute(key, h):
    """First forward of a checkpointed layer: keep h for the recompute.  Recompute: h's kept value, in
    h's place in the graph (the attention block's o projection was not formed again: its output was a
    zero, kernels.ops.lora.lora_linear(output_unused=True)); the gradient flows on to h's graph as before."""
    if keeping():
        keep_for_recompute(key, (h,))
        return h
    kept = kept_for_recompute(key) if recomputing() else None
    return h if kept is None else with_kept_value(h, kept[0])


def cpu_embedding_forward(self, input_ids):
    """A frozen embedding table kept in host memory: the GPU gathers its rows in place (a device view of
    the pinned table, kernels.memory.host_memory) where it can, else a gather on the CPU and one copy of the
    rows to the GPU."""
    table = self._tunesmith_device_table
    if table is not None and input_ids.device == table.device:
        return F.embedding(input_ids, table, self.padding_idx)
    device = self._tunesmith_device
    out = self._tunesmith_stock(input_ids.to("cpu"))
    if device.type == "cuda":
        out = out.pin_memory().to(device, non_blocking=True)
    return out.to(device)


def mlp_forward(self, x):
    """down(act(gate(x)) * up(x)) through the fused LoRA MLP, or stock projections + the GLU kernel.
    `_tunesmith_residual_out`: the family's decoder layer only adds this output to the residual."""
    act = self._tunesmith_act
    projs = _three_projs(self.gate_proj, self.up_proj, self.down_proj)
    if projs is not None:
        return lora_mlp(x, *projs, act, residual_out=self._tunesmith_residual_out)
    return self.down_proj(GLUFunction.apply(self.gate_proj(x), self.up_proj(x), act))


def _three_projs(a, b, c) -> tuple[LoRAProj, LoRAProj, LoRAProj] | None:
    """The LoRAProj of each of three modules, or None when one has none (the stock modules run)."""
    pa, pb, pc = lora_proj_of(a), lora_proj_of(b), lora_proj_of(c)
    return None if pa is None or pb is None or pc is None else (pa, pb, pc)


def _project(module, x):
    p = lora_proj_of(module)
    return module(x) if p is None else lora_linear(x, p)


def _attention_function(self):
    """The attention function transformers would call (config._attn_implementation, else the family's
    eager one); looked up once per (module class, implementation, registry entry)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    impl = self.config._attn_implementation
    key = (type(self), impl, ALL_ATTENTION_FUNCTIONS.get(impl) if impl else None)  # re-registration: new key
    fn = _ATTENTION.get(key)
    if fn is None:
        eager = sys.modules[type(self).__module__].eager_attention_forward
        if hasattr(ALL_ATTENTION_FUNCTIONS, "get_interface"):
            fn = ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager)
        else:
            fn = eager if impl in (None, "eager") else ALL_ATTENTION_FUNCTIONS[impl]
        _ATTENTION[key] = fn
    return fn


_ATTENTION: dict = {}


@functools.cache
def _sdpa_function():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward


def _plain_sdpa_causal(self, q, k, v, attention_mask, dropout, extra, kwargs) -> bool | None:
    """Whether transformers' SDPA function, called here, would compute plain attention with
    is_causal True or False (kernels.ops.attention computes the same); None where it would do more
    (a mask: padding, packing, a sliding window that binds; dropout, softcap, position bias), where
    another function is registered, or where autocast would change its dtypes."""
    if not self._tunesmith_stash_attention or attention_mask is not None or dropout:
        return None
    if extra.get("softcap") is not None or kwargs.get("position_bias") is not None:
        return None  # sdpa raises on softcap: the stock call says so
    dev = q.device.type
    if kwargs.get("output_attentions") or (
        torch.is_autocast_enabled(dev) and q.dtype != torch.get_autocast_dtype(dev)
    ):  # autocast would cast q, k, v for SDPA (TRL trains under bf16 autocast: there they are bf16)
        return None
    if not (q.dtype == k.dtype == v.dtype and q.shape[2] == k.shape[2] and q.shape[1] % k.shape[1] == 0):
        return None
    if _attention_function(self) is not _sdpa_function():
        return None
    causal = kwargs.get("is_causal")
    causal = getattr(self, "is_causal", True) if causal is None else causal
    return bool(causal) and q.shape[2] > 1  # transformers' rule for is_causal without a mask


def _sdpa(self, q, k, v, causal: bool):
    """kernels.ops.attention, stashing for the recompute of a checkpointed layer: its first forward keeps
    out and lse (keeping()), its recompute backpropagates through them and runs no forward kernel."""
    key = ("attention", self)
    if keeping():
        out, saved = attention_forward_only(q, k, v, scale=self.scaling, causal=causal)
        if saved is not None:
            keep_for_recompute(key, tuple(saved))
        return out
    items = kept_for_recompute(key)  # None outside a recompute, or where the forward kept nothing
    saved = None if items is None else Saved(*items)
    return attention(q, k, v, scale=self.scaling, causal=causal, saved=saved)


def _kept_qkv(self, x, projs: tuple[LoRAProj, LoRAProj, LoRAProj], cos, sin):
    """In a recompute whose first forward kept the rotated q, k, v (only where they fed the stashed
    SDPA): them, as outputs of kernels.ops.lora.lora_qkv_kept (backward through RoPE and the projections);
    else None."""
    if not recomputing():
        return None
    items = kept_for_recompute(("qkv", self))
    if items is None:
        return None
    q, k, v = items
    kept = KeptQKV(q, k, v, cos, sin, rope_half(q, k, cos, sin, self.head_dim), self.head_dim)
    return lora_qkv_kept(x, *projs, kept)


def attention_forward(self, hidden_states, position_embeddings=None, attention_mask=None, **kwargs):
    """q/k/v (fused LoRA), optional q/k RMSNorm, RoPE kernel, the model's attention function (or
    kernels.ops.attention with the recompute stash, where that computes the same: module docstring), o."""
    cache = kwargs.pop("cache", None)
    if cache is None:
        cache = kwargs.pop("past_key_values", None)
    if cache is not None or position_embeddings is None:
        if cache is not None:
            kwargs["cache" if "cache" in self._tunesmith_params else "past_key_values"] = cache
        return self._tunesmith_stock(hidden_states, position_embeddings, attention_mask, **kwargs)
    q, k, v, rotated = _rotated_qkv(self, hidden_states, *position_embeddings)
    out, weights = _attend(self, q, k, v, attention_mask, rotated, kwargs)
    out = out.reshape(*hidden_states.shape[:-1], -1).contiguous()
    return _output_projection(self, out), weights


def _rotated_qkv(self, x, cos, sin):
    """q, k, v [B, H, T, D] with RoPE applied to q and k, and what a first forward may keep for its
    recompute (q, k, v as rotated in place, else None).  RoPE runs in place when q and k are tensors
    only this forward holds (the fused projection's outputs, or our q/k norms' outputs); a recompute
    handed the kept ones runs no projection or rotation (_kept_qkv)."""
    hidden_shape = (*x.shape[:-1], -1, self.head_dim)

    def heads(t):  # [B, T, H * D] or [B, T, H, D] -> [B, H, T, D]
        return t.view(hidden_shape).transpose(1, 2)

    projs = _three_projs(self.q_proj, self.k_proj, self.v_proj)
    owned = projs is not None and self._tunesmith_rope_inplace  # q, k: the fused projection's own tensors
    q_norm = getattr(self, "q_norm", None)
    kept = _kept_qkv(self, x, projs, cos, sin) if projs is not None and owned and q_norm is None else None
    if kept is not None:  # rotated in the first forward; lora_qkv_kept's backward undoes the rotation
        q, k, v = kept
        return heads(q), heads(k), heads(v), None
    if projs is not None:
        q, k, v = lora_qkv(x, *projs)  # [B, T, H * D] each
    else:
        q, k, v = (m(x) for m in (self.q_proj, self.k_proj, self.v_proj))
    if q_norm is not None:
        q, k = q_norm(q.view(hidden_shape)), self.k_norm(k.view(hidden_shape))  # [B, T, H, D]
        owned = owned and all(hasattr(n, "_tunesmith_stock") for n in (q_norm, self.k_norm))
    if owned and can_rope_inplace(q) and can_rope_inplace(k):  # rotated where they lie (rope.py)
        q, k = rope_(q, k, cos, sin, self.head_dim)
        rotated = (q, k, v) if q_norm is None and keeping() else None
        return heads(q), heads(k), heads(v), rotated
    q, k = rope(heads(q), heads(k), cos, sin)
    return q, k, heads(v), None


def _attend(self, q, k, v, attention_mask, rotated, kwargs):
    """(out [B, T, H, D], weights): kernels.ops.attention with the recompute stash where transformers' SDPA
    would compute plain attention (then `rotated` q, k, v are kept too), else the model's function."""
    extra = {}
    window = getattr(self, "sliding_window", getattr(self.config, "sliding_window", None))
    if window is not None:
        extra["sliding_window"] = window
    if getattr(self, "attn_logit_softcapping", None) is not None:
        extra["softcap"] = self.attn_logit_softcapping
    dropout = self.attention_dropout if self.training else 0.0
    causal = _plain_sdpa_causal(self, q, k, v, attention_mask, dropout, extra, kwargs)
    if causal is None:
        return _attention_function(self)(
            self, q, k, v, attention_mask, dropout=dropout, scaling=self.scaling, **extra, **kwargs
        )
    if rotated is not None:  # the recompute then runs no q/k/v projection or rotation either
        keep_for_recompute(("qkv", self), rotated)
    return _sdpa(self, q, k, v, causal).transpose(1, 2), None


def _output_projection(self, out):
    """o(out); in a recompute whose layer kept h = x + o(out) (norm_forward), o's backward only: its
    output enters the layer through h alone, so its value is a zero and no GEMM runs."""
    key = self.__dict__.get("_tunesmith_residual_key")
    if key is not None and recomputing() and is_kept(key):
        proj = lora_proj_of(self.o_proj)
        if proj is not None:
            return lora_linear(out, proj, output_unused=True)
    return _project(self.o_proj, out)


def _shift_labels(labels, kwargs):
    shift = kwargs.pop("shift_labels", None)
    if shift is None:
        shift = F.pad(labels, (0, 1), value=-100)[..., 1:]
    return shift.to(labels.device)


def causal_lm_forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                      labels=None, use_cache=None, logits_to_keep=0, **kwargs):  # fmt: skip
    """Training with labels: the loss through the fused linear cross-entropy, no logits returned."""
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    head = self.get_output_embeddings()
    fusable = (
        labels is not None and self.training and cache is None and not use_cache and logits_to_keep == 0
        and not kwargs.get("fused_lm_head")  # TRL's own fused head (an outer wrapper) asked for its outputs
        and type(head) is torch.nn.Linear and head.bias is None
    )  # fmt: skip
    if not fusable:
        return self._tunesmith_stock(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            inputs_embeds=inputs_embeds, labels=labels, use_cache=use_cache, logits_to_keep=logits_to_keep,
            **kwargs,
        )  # fmt: skip
    from transformers.modeling_outputs import CausalLMOutputWithPast

    num_items = kwargs.pop("num_items_in_batch", None)
    shift = _shift_labels(labels, kwargs)
    out = self.model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
        inputs_embeds=inputs_embeds, use_cache=False, **kwargs,
    )  # fmt: skip
    hidden = out.last_hidden_state
    softcap = getattr(self.config, "final_logit_softcapping", None)
    loss = fused_linear_cross_entropy(hidden, head.weight, shift, softcap=softcap, num_items=num_items)
    return CausalLMOutputWithPast(
        loss=loss, logits=None, hidden_states=out.hidden_states, attentions=out.attentions
    )
