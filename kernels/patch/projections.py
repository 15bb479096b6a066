"""Reads a linear projection of a loaded model as a `LoRAProj`: peft LoRA layers over bitsandbytes
Linear4bit (NF4) or plain nn.Linear bases, and bare bases (a rank-0 adapter).

This is the one place that knows peft's LoraLayer attributes (base_layer, lora_A/lora_B ModuleDicts,
scaling, lora_dropout, lora_variant, merged, disable_adapters) and bitsandbytes' Params4bit /
QuantState.  Called on every forward, so that disabling adapters (a DPO reference pass), merging or
switching adapters is honoured: whatever the fused path cannot express returns None and the caller
runs the stock module instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..memory.offload import REPLAYS_RNG, layer_memo
from ..ops.lora import LoRAProj
from ..ops.nf4 import NF4Weight

# A peft LoraLayer, a bitsandbytes Linear4bit or an nn.Linear, read by attribute name: nn.Module's
# __getattr__ types every such attribute as `Tensor | Module`, which says nothing about these.
_Layer = Any


def _nf4_weight(base: _Layer) -> NF4Weight | None:
    """The NF4Weight of a bitsandbytes Linear4bit, cached on the module (rebuilt if the data moved)."""
    w = base.weight
    qs = getattr(w, "quant_state", None)
    if qs is None or getattr(qs, "quant_type", None) != "nf4":
        return None
    key = (w.data_ptr(), qs.absmax.data_ptr())
    cached = getattr(base, "_tunesmith_nf4", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    packed = w.data.view(torch.uint8).reshape(-1)
    nested = getattr(qs, "nested", False)
    nf4 = NF4Weight(
        packed=packed,
        absmax=qs.absmax,
        code=qs.code.to(device=packed.device, dtype=torch.float32),
        blocksize=int(qs.blocksize),
        shape=tuple(qs.shape),
        dtype=qs.dtype,
        absmax2=qs.state2.absmax if nested else None,
        code2=qs.state2.code if nested else None,
        blocksize2=int(qs.state2.blocksize) if nested else 256,
        offset=float(qs.offset) if nested else 0.0,
    )
    base._tunesmith_nf4 = (key, nf4)
    return nf4


def _base_weight(base: _Layer):
    """(weight, bias) of a frozen base projection, or None when the fused path cannot use it."""
    bias = getattr(base, "bias", None)
    if bias is not None and bias.requires_grad:
        return None
    if type(base).__name__ == "Linear4bit" and hasattr(base.weight, "quant_state"):
        nf4 = _nf4_weight(base)
        return None if nf4 is None else (nf4, bias)
    if type(base) is nn.Linear and not base.weight.requires_grad:
        return base.weight, bias
    return None


def _active_adapter(module: _Layer):
    """(A, B, scaling) of the single active vanilla LoRA adapter, () when none is active, None if unfusable."""
    if module.merged:
        return None
    if module.disable_adapters:
        return ()
    names = [a for a in module.active_adapters if a in module.lora_A]
    if not names:
        return ()
    if len(names) > 1 or names[0] in getattr(module, "lora_variant", {}):
        return None
    a = names[0]
    drop = module.lora_dropout[a]
    if not isinstance(drop, nn.Identity) and module.training and getattr(drop, "p", 0.0) > 0:
        _require_replayed_dropout()
        return None  # peft's module draws the mask; a checkpointed layer's recompute draws it again
    lin_a, lin_b = module.lora_A[a], module.lora_B[a]
    if getattr(lin_a, "bias", None) is not None or getattr(lin_b, "bias", None) is not None:
        return None
    return lin_a.weight, lin_b.weight, float(module.scaling[a])


def _require_replayed_dropout() -> None:
    """Inside a checkpointed layer, a dropout is exact only if its recompute replays the random state
    (kernels.memory.offload.replaying_rng, installed by patch_model for layers that held a dropout then)."""
    memo = layer_memo()
    if memo is not None and not memo.get(REPLAYS_RNG):
        raise RuntimeError(
            "tunesmith.kernels: LoRA dropout in a checkpointed layer that was patched before the dropout "
            "was there; call patch_model again (or gradient_checkpointing_enable()) after adding adapters"
        )


def lora_proj_of(module: nn.Module) -> LoRAProj | None:
    """The projection as a LoRAProj (rank 0 when no adapter is active), or None to run it stock.

    Inside a checkpointed layer the answer of its forward is kept (`offload.layer_memo`) and given
    again in its recompute: the same adapters and weights as the forward by construction, and the
    peft attributes are walked once per layer and step instead of twice."""
    memo = layer_memo()
    if memo is None:
        return _read_proj(module)
    key = ("lora_proj", module)
    if key not in memo:
        memo[key] = _read_proj(module)
    return memo[key]


def _read_proj(module: _Layer) -> LoRAProj | None:
    if hasattr(module, "base_layer") and hasattr(module, "lora_A"):
        adapter = _active_adapter(module)
        if adapter is None:
            return None
        base = module.base_layer
    else:
        adapter, base = (), module
    wb = _base_weight(base)
    if wb is None:
        return None
    weight, bias = wb
    if adapter:
        return LoRAProj(adapter[0], adapter[1], weight, bias, adapter[2])
    out_f, in_f = base.out_features, base.in_features
    dev = bias.device if bias is not None else base.weight.device
    empty_a = torch.zeros(0, in_f, device=dev)
    return LoRAProj(empty_a, torch.zeros(out_f, 0, device=dev), weight, bias, 1.0)
