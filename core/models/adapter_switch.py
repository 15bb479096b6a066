"""Switching a LoRA model's adapters without peft's walks over the whole model.

TRL's DPO computes its reference log-probs once per step with a frozen copy of the adapter: it adds a
"ref" adapter next to "default" and calls peft's `set_adapter("ref")`, then `set_adapter("default")`
(GRPO with a KL term and the evaluation's base-against-tuned answers use `disable_adapter()` instead).
Each of those peft calls walks every module of the model and, for `disable_adapter()`, first builds the
model's status (a repr of every adapter layer): 94-133 ms each on a 2-core CPU for the 30-layer demo
model, host time the GPU waits through every step.

A LoRA layer's forward reads two things: its `_active_adapter` names and its `_disable_adapters` flag.
The switches here set those on the adapter layers found once, and set requires_grad as peft does (the
active adapter's weights trainable, the others frozen) through a per-adapter list of weights.  Anything
else (prompt learning, other tuners, modules_to_save, merged weights, adapters with weights a variant
keeps frozen) goes to peft's own methods.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


def install_fast_adapter_switch(model: Any) -> bool:
    """Give a LoRA PeftModel lean `disable_adapter()` and `set_adapter()`; False (peft's own stay) for
    anything else: prompt learning, other tuners, auxiliary trainable modules, or no adapter layers."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from peft.tuners.tuners_utils import BaseTunerLayer

    if not isinstance(model, PeftModel):
        return False
    if any(not hasattr(c, "r") or c.is_prompt_learning for c in model.peft_config.values()):
        return False
    if any(getattr(c, "modules_to_save", None) or getattr(c, "trainable_token_indices", None)
           for c in model.peft_config.values()):  # fmt: skip
        return False  # peft's set_adapter switches those wrappers too
    # the adapter layers are fixed once peft wrapped the model: later adapters (TRL's "ref") go into them
    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    if not layers or not all(isinstance(m, LoraLayer) for m in layers):
        return False
    stock_set_adapter = model.set_adapter
    untyped: Any = model  # peft's plain attributes, which mypy reads as nn.Module's Tensor | Module
    weights_of: dict[str, list] = {}  # adapter name -> its LoRA weights in every layer

    def adapter_weights() -> dict[str, list]:
        names = set(model.peft_config)
        if set(weights_of) != names:  # an adapter was added or deleted since: list them again
            weights_of.clear()
            for name in names:
                weights_of[name] = [
                    p
                    for layer in layers
                    for dict_name in layer.adapter_layer_names
                    if name in getattr(layer, dict_name)
                    for p in getattr(layer, dict_name)[name].parameters()
                ]
        return weights_of

    def set_adapter(adapter_name: str, inference_mode: bool = False) -> None:
        if adapter_name not in model.peft_config:
            raise ValueError(f"Adapter {adapter_name} not found.")
        if any(layer.merged or getattr(layer, "frozen_peft_weight_names", None) for layer in layers):
            stock_set_adapter(adapter_name, inference_mode=inference_mode)
            return
        for name, weights in adapter_weights().items():
            trainable = name == adapter_name and not inference_mode
            for weight in weights:
                if weight.is_leaf:
                    weight.requires_grad_(trainable)
        for layer in layers:
            layer._active_adapter = [adapter_name]
        untyped.active_adapter = adapter_name  # peft keeps the name on the PeftModel and on its tuner
        untyped.base_model.active_adapter = adapter_name

    @contextmanager
    def disable_adapter() -> Iterator[None]:
        # no requires_grad change: a switched-off adapter's weights take no part in the forward
        before = [layer._disable_adapters for layer in layers]
        was_disabled = getattr(model, "_adapters_disabled", False)
        for layer in layers:
            layer._disable_adapters = True
        model._adapters_disabled = True
        try:
            yield
        finally:
            for layer, flag in zip(layers, before, strict=True):
                layer._disable_adapters = flag
            model._adapters_disabled = was_disabled

    # instance attributes shadow PeftModel's methods for this model only
    object.__setattr__(model, "disable_adapter", disable_adapter)
    object.__setattr__(model, "set_adapter", set_adapter)
    log.debug("Adapter switch: %d LoRA layers flagged directly", len(layers))
    return True
