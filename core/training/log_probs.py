"""Per-token log-probabilities for DPO, ORPO and GRPO through Tunesmith's fused kernel.

TRL's preference and RL trainers ask the model for `model(..., labels=labels, fused_lm_head=True)` and
read `.log_probs` (and `.entropy`, `.mean_logits`, ...) from a `FusedCausalLMOutput`; TRL installs its own
chunked head for that when the trainer is built.  When our kernels are patched into the model, this
module puts `tunesmith.kernels.fused_linear_log_probs` in front of TRL's head: the same outputs, the logits
never materialised, and one head matmul fewer per scored batch (the log-prob gradient is formed in the
forward).  Anything it does not handle (a head with a bias, fp32-cast heads, MoE router losses, other
outputs, no labels) goes to TRL's own head unchanged.  This module is the only one that knows that call
convention.
"""

from __future__ import annotations

import functools
import logging
import types
from typing import Any

log = logging.getLogger(__name__)

_HANDLED_OUTPUTS = {"log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1"}


def _base_model(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _logit_scale(text_config: Any) -> float | None:
    """TRL's multipliers, or None when the model uses one we do not mirror (then TRL's head runs)."""
    for name in ("logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling"):
        if getattr(text_config, name, None) is not None:
            return None
    return 1.0


def _requested_outputs(trl_forward: Any) -> set[str]:
    """The per-token fields TRL's head was asked for (the others stay None, as TRL returns them)."""
    import inspect

    try:
        wanted = inspect.getclosurevars(trl_forward.__func__).nonlocals.get("outputs")
    except (AttributeError, TypeError):
        wanted = None
    return set(wanted) | {"log_probs"} if wanted else set(_HANDLED_OUTPUTS)


def install_fused_log_probs(trainer: Any, temperature: float = 1.0) -> bool:
    """Route the trainer's `fused_lm_head=True` calls through our kernel; False when it cannot."""
    import torch

    base = _base_model(trainer.model)
    trl_forward = base.forward
    if getattr(trl_forward, "_tunesmith_log_probs", False):
        return True
    text_config = base.config.get_text_config()
    head = base.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear) or head.bias is not None or _logit_scale(text_config) is None:
        log.info("Log-probs: TRL's fused head (this model's head is not a plain linear layer)")
        return False
    wanted = _requested_outputs(trl_forward)
    if getattr(trainer.args, "cast_lm_head_to_fp32", False) or not wanted <= _HANDLED_OUTPUTS:
        log.info("Log-probs: TRL's fused head (fp32 head or outputs we do not compute)")
        return False
    softcap = getattr(text_config, "final_logit_softcapping", None)

    @functools.wraps(type(base).forward)
    def forward(
        self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kw
    ):
        if not fused_lm_head or labels is None and shift_labels is None or kw.get("output_router_logits"):
            return trl_forward(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                               num_items_in_batch=num_items_in_batch, **kw)  # fmt: skip
        return _scored(self, args, kw, labels, shift_labels, num_items_in_batch, temperature, softcap, wanted)

    forward._tunesmith_log_probs = True
    base.forward = types.MethodType(forward, base)
    log.info("Log-probs: Tunesmith's fused kernel")
    return True


def _scored(model, args, kwargs, labels, shift_labels, num_items, temperature, softcap, wanted) -> Any:
    """What TRL's fused forward returns, with the per-token values from our kernel."""
    from trl.trainer.utils import FusedCausalLMOutput

    from tunesmith.kernels import fused_linear_log_probs

    kwargs["use_cache"] = False
    hidden = model.base_model(*args, **kwargs).last_hidden_state  # looked up per call: peft may swap it
    if shift_labels is None:
        hidden, labels = hidden[:, :-1], labels[:, 1:]
    else:
        labels = shift_labels
    weight = model.get_output_embeddings().weight
    hidden, labels = hidden.to(weight.device), labels.to(weight.device)
    mask = labels != -100
    scored = fused_linear_log_probs(
        hidden[mask], weight, labels[mask], temperature=temperature, softcap=softcap
    )

    def spread(name):  # zeros where the label is ignored; masked_scatter keeps the graph when none is valid
        if name not in wanted:
            return None
        values = getattr(scored, name)
        return values.new_zeros(mask.shape).masked_scatter(mask, values)

    log_probs = spread("log_probs")
    denominator = mask.sum().clamp(min=1) if num_items is None else num_items
    return FusedCausalLMOutput(
        loss=-log_probs.sum() / denominator,
        log_probs=log_probs,
        entropy=spread("entropy"),
        log_sum_sq_probs=spread("log_sum_sq_probs"),
        mean_logits=spread("mean_logits"),
        is_top1=spread("is_top1"),
        label_mask=mask,
    )
