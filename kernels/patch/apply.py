"""patch_model: puts Tunesmith's kernels into a loaded transformers model, in place, with a revert.

Knows transformers' model classes by name (the table in `families`, keyed by config.model_type) and
peft's wrappers (PeftModel -> LoraModel -> the transformers model; LoRA layers are read at call time
in `projections`).  Patches module *instances* (their `forward` attribute), never classes or library
source, so other models in the process stay stock.  Works before or after peft wraps the model,
because the patched forwards look their projections up on every call.  A model type it does not know
is left stock with a log line.  It does not change weights, dtypes or devices.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections import Counter
from typing import TYPE_CHECKING, cast

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from .._launch import interpreting
from ..memory.host_budget import HostBudget, default_host_budget, default_stash_cap, pinned_bytes
from ..memory.host_memory import device_view
from ..memory.offload import make_checkpoint_func, replaying_rng
from ..memory.pinned_pool import POOL
from .families import ACTIVATIONS, FAMILIES
from .forwards import attention_forward, causal_lm_forward, cpu_embedding_forward, mlp_forward, norm_forward
from .options import ComparisonOptions
from .report import PatchReport, set_undoable

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

_FORWARDS = {
    "rms_norm": norm_forward,
    "attention": attention_forward,
    "mlp": mlp_forward,
    "causal_lm": causal_lm_forward,
    "cpu_embedding": cpu_embedding_forward,
}


def _inner_model(model: nn.Module) -> PreTrainedModel:
    """The transformers model inside peft's wrappers (PeftModel -> LoraModel -> model)."""
    get_base_model = getattr(model, "get_base_model", None)
    return cast("PreTrainedModel", model if get_base_model is None else get_base_model())


def _patch_forward(module: nn.Module, kind: str, report: PatchReport, **attrs) -> None:
    stock = module.forward
    set_undoable(module, "_tunesmith_stock", stock, report)
    set_undoable(module, "_tunesmith_params", tuple(inspect.signature(stock).parameters), report)
    for k, v in attrs.items():
        set_undoable(module, k, v, report)
    set_undoable(module, "forward", types.MethodType(_FORWARDS[kind], module), report)


def patch_model(
    model: nn.Module,
    *,
    rms_norm: bool = True,
    attention: bool = True,
    mlp: bool = True,
    cross_entropy: bool = True,
    checkpointing: str | None = None,
    keep_layers: int = 0,
    embeddings_on_cpu: bool = False,
    host_budget_gib: float | None = None,
    _comparison: ComparisonOptions | None = None,
) -> PatchReport:
    """Patch `model` (a transformers causal LM, bare or inside peft) in place; returns the report.

    checkpointing: None leaves transformers' setting alone; "offload" checkpoints every decoder layer
    keeping its input in pinned host memory; "device" checkpoints keeping inputs on the device.  Either
    survives a later `gradient_checkpointing_enable()` (which TRL's trainers call).
    keep_layers: with checkpointing, the last `keep_layers` decoder layers are not checkpointed (no
    recompute, their activations stay in VRAM): the knob for trading free VRAM for speed.
    embeddings_on_cpu: move a frozen, untied input embedding table to host memory (saves its VRAM,
    vocab x hidden x 2 bytes: 1 GiB for Llama-3-8B); on a GPU the table is pinned and the GPU gathers
    each batch's rows from it over PCIe (kernels.memory.host_memory), else a host gather and one copy per
    forward.
    host_budget_gib: all the pinned host memory the patch may hold: the embedding table, the layer
    inputs, the stash, in that order of priority (kernels.memory.host_budget; default: the memory available
    now less headroom for the desktop).  Layer inputs that do not fit stay in VRAM.  The budget in use
    and its peak are `report.host_budget`.
    With checkpointing, the recompute of a layer skips what its backward does not read and reuses what
    the forward kept (kernels/DESIGN.md); `_comparison` turns those optimisations off one by one, for
    benchmarks and tests only (same values).
    """
    options = _comparison or ComparisonOptions()
    lean_recompute, inplace_rope = options.lean_recompute, options.inplace_rope
    stash_attention, stash_budget_gib = options.stash_attention, options.stash_budget_gib
    inner = _inner_model(model)
    old = getattr(inner, "_tunesmith_patch", None)
    if old is not None and old.patched:
        old.revert()
    config = getattr(inner, "config", None)
    model_type = getattr(config, "model_type", None)
    family = FAMILIES.get(model_type or "")
    if family is None:
        log.info("tunesmith.kernels: no kernels for model_type %r; the model stays stock", model_type)
        return PatchReport(model_type, False, notes=[f"model_type {model_type!r} not supported"])
    first = next(inner.parameters(), None)
    device = None if first is None else first.device
    if device is not None and device.type != "cuda" and not interpreting():
        note = f"model on {device.type}: the Triton kernels need a CUDA GPU (or TRITON_INTERPRET=1)"
        log.info("tunesmith.kernels: %s; the model stays stock", note)
        return PatchReport(model_type, False, notes=[note])
    report = PatchReport(model_type, True)
    act = ACTIVATIONS.get(getattr(config, family.act_attr, None) or "silu")
    enabled = {"rms_norm": rms_norm, "attention": attention, "mlp": mlp and act is not None}
    enabled["causal_lm"] = cross_entropy
    if act is None:
        report.notes.append(f"activation {getattr(config, family.act_attr, None)!r} unknown: MLP stock")
    classes = family.classes()
    counts: Counter = Counter()
    layers: list[nn.Module] = []
    for module in inner.modules():
        kind = classes.get(type(module).__name__)
        if kind == "decoder_layer":
            layers.append(module)
            continue
        if kind is None or not enabled[kind]:
            continue
        attrs: dict[str, object] = {"_tunesmith_offset": family.norm_offset} if kind == "rms_norm" else {}
        if kind == "mlp":
            attrs = {"_tunesmith_act": act, "_tunesmith_residual_out": family.mlp_residual_out}
        if kind == "attention":
            attrs = {"_tunesmith_rope_inplace": inplace_rope, "_tunesmith_stash_attention": stash_attention}
        _patch_forward(module, kind, report, **attrs)
        counts[kind] += 1
    if stash_attention and family.residual_norm is not None:
        _link_residual_norms(layers, family.residual_norm, report)
    limit = default_host_budget() if host_budget_gib is None else int(host_budget_gib * 2**30)
    host_budget = report.host_budget = HostBudget(limit)
    if embeddings_on_cpu:  # first: the table has the first claim on the host budget
        _embeddings_to_cpu(inner, report, counts)
    if checkpointing is not None:
        if checkpointing not in ("offload", "device"):
            raise ValueError(f'checkpointing must be None, "offload" or "device", got {checkpointing!r}')
        for layer in layers:  # undo records for the layers' own attributes
            set_undoable(layer, "gradient_checkpointing", layer.gradient_checkpointing, report)
            set_undoable(
                layer,
                "_gradient_checkpointing_func",
                getattr(layer, "_gradient_checkpointing_func", None),
                report,
            )
        stash_cap = default_stash_cap() if stash_budget_gib is None else int(stash_budget_gib * 2**30)
        n_checkpointed = max(0, len(layers) - max(0, keep_layers))
        func = make_checkpoint_func(
            checkpointing == "offload",
            lean_recompute,
            stash_cap,
            host_budget,
            n_checkpointed,
            _stash_ratio(config) if stash_attention else 0.0,
        )
        counts[f"checkpoint_{checkpointing}"] = _checkpoint(layers, func, keep_layers)
        _keep_checkpointing(inner, layers, func, keep_layers, report)
    report.replaced = dict(counts)
    set_undoable(inner, "_tunesmith_patch", report, report)
    log.info("tunesmith.kernels: patched %s: %s", model_type, report.replaced)
    return report


def _stash_ratio(config) -> float:
    """The bytes a layer stashes per byte of its input (kernels/DESIGN.md's stash): attention output,
    rotated q, k, v and the residual sum in the input's dtype, the log-sum-exp in fp32.  Families whose
    q/k norms keep q and k out of the stash stash less; this counts the most."""
    hidden = getattr(config, "hidden_size", 0) or 0
    heads = getattr(config, "num_attention_heads", 0) or 0
    if not hidden or not heads:
        return 0.0
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv = (getattr(config, "num_key_value_heads", None) or heads) * head_dim
    q = heads * head_dim
    return (2 * q + 2 * kv + hidden) / hidden + heads * 4 / (hidden * 2)


def _link_residual_norms(layers: list[nn.Module], norm_name: str, report: PatchReport) -> None:
    """Each decoder layer's norm of the residual stream after attention keeps its input for the
    recompute, and the layer's attention then skips its o projection there (forwards.norm_forward,
    forwards.attention_forward); both must be patched, else neither changes."""
    for layer in layers:
        norm, attn = getattr(layer, norm_name, None), getattr(layer, "self_attn", None)
        if norm is None or attn is None or not all("_tunesmith_stock" in m.__dict__ for m in (norm, attn)):
            continue
        key = ("residual", norm)
        set_undoable(norm, "_tunesmith_kept_input", key, report)
        set_undoable(attn, "_tunesmith_residual_key", key, report)


def _checkpoint(layers: list[nn.Module], func, keep_layers: int) -> int:
    """Checkpoints all but the last `keep_layers` decoder layers with `func` (its recompute replaying
    the random state in layers that draw random numbers); returns how many."""
    n = max(0, len(layers) - max(0, keep_layers))
    replaying = replaying_rng(func)
    for i, layer in enumerate(layers):
        # torch types Module.__setattr__'s value as Tensor | Module; any attribute can be set
        layer.gradient_checkpointing = i < n  # type: ignore[assignment]
        layer._gradient_checkpointing_func = replaying if draws_random(layer) else func
    return n


def draws_random(layer: nn.Module) -> bool:
    """Whether a decoder layer holds a random op for training: a dropout with p > 0 (peft's
    lora_dropout, a model's own) or transformers' attention dropout (a float on the attention module).
    Read when checkpointing is installed, and again at each gradient_checkpointing_enable()."""
    for module in _submodules(layer):
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return True
        rate = getattr(module, "attention_dropout", None)
        if isinstance(rate, (int, float)) and rate > 0:
            return True
    return False


def _submodules(module: nn.Module):
    """module and everything under it: Module.modules() without the names and the seen-set, which made
    TRL's checkpointing toggle (every DPO step) walk a 4B model's ~3000 modules at ~15 µs each."""
    stack = [module]
    while stack:
        module = stack.pop()
        yield module
        stack.extend(child for child in module._modules.values() if child is not None)


def _keep_checkpointing(inner: PreTrainedModel, layers, func, keep_layers: int, report: PatchReport) -> None:
    """A later gradient_checkpointing_enable() (TRL's trainers call it) re-installs our checkpointing,
    and TRL's turning it off and on around each DPO reference pass costs little host time."""
    # What transformers' own _set_gradient_checkpointing sets, found once: only decoder layers and
    # their model carry the flag, and adapters added later add neither.
    flagged = [m for m in _submodules(inner) if hasattr(m, "gradient_checkpointing")]

    def set_gradient_checkpointing(enable: bool = True, gradient_checkpointing_func=None, **_ignored) -> None:
        for module in flagged:  # the decoder layers get ours below (every_n_layers: keep_layers is ours)
            module._gradient_checkpointing_func = gradient_checkpointing_func or torch_checkpoint
            module.gradient_checkpointing = enable
        if enable:
            _checkpoint(layers, func, keep_layers)

    set_undoable(inner, "_set_gradient_checkpointing", set_gradient_checkpointing, report)
    stock_input_grads = inner.enable_input_require_grads

    def enable_input_require_grads() -> None:
        # transformers registers a new hook on the input embedding at every gradient_checkpointing_enable()
        # and removes the old one only for models that loaded peft through transformers; TRL's DPO turns
        # checkpointing off and on around each reference pass, so a run would end with a hook per step,
        # each run at every forward.  One is all the gradient needs.
        if not getattr(inner, "_require_grads_hooks", None):
            stock_input_grads()

    set_undoable(inner, "enable_input_require_grads", enable_input_require_grads, report)


def _embeddings_to_cpu(inner: PreTrainedModel, report: PatchReport, counts: Counter) -> None:
    emb, head = inner.get_input_embeddings(), inner.get_output_embeddings()
    weight, budget = emb.weight, report.host_budget
    assert isinstance(weight, torch.Tensor) and budget is not None  # patch_model made the budget first
    if weight.requires_grad or (head is not None and head.weight is weight):
        report.notes.append("embeddings stay on the device: trainable or tied to the output head")
        return
    device = weight.device
    emb.to("cpu")
    report._undo.append(lambda: emb.to(device))
    table = None
    if device.type == "cuda" and type(emb) is nn.Embedding and emb.max_norm is None:
        # pinned, the GPU gathers the rows it needs in place (kernels.memory.host_memory); scaled or
        # renormalising embeddings keep their own forward, on the CPU
        cost = pinned_bytes(weight.nbytes)
        if not budget.take(cost):
            emb.to(device)
            report._undo.pop()
            report.notes.append("embeddings stay on the device: the host-memory budget has no room")
            return
        block = POOL.take(weight.nbytes, budget)  # exact size, page-locked (kernels.memory.pinned_pool)
        block.view(weight.dtype).view(weight.shape).copy_(weight.data)
        weight.data = block.view(weight.dtype).view(weight.shape)

        def give_back() -> None:
            POOL.give(block)
            budget.give(cost)

        # undone after the table went back to the device (undo records run last first)
        report._undo.insert(len(report._undo) - 1, give_back)
        table = device_view(weight.data, device, page_locked=POOL.page_locked(block))
    _patch_forward(emb, "cpu_embedding", report, _tunesmith_device=device, _tunesmith_device_table=table)
    counts["embeddings_on_cpu"] += 1
    if table is not None:
        counts["embeddings_gathered_by_gpu"] += 1


def unpatch_model(model: nn.Module) -> bool:
    """Revert a patch_model on `model`; False when it was not patched."""
    report = getattr(_inner_model(model), "_tunesmith_patch", None)
    if report is None or not report.patched:
        return False
    report.revert()
    return True
