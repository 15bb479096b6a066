"""Gradient checkpointing of decoder layers whose saved inputs live in pinned CPU memory.

Knows torch only.  `offloaded_checkpoint(fn, hidden, *args)` runs `fn` without keeping activations;
it copies `hidden` (the layer input, the only tensor a checkpoint keeps) to pinned host memory on a side
stream while the GPU computes, and in the backward brings it back, recomputes `fn` with grad and
backpropagates.  Layers form a chain: when layer i starts its backward it prefetches layer i-1's input
on the copy stream, so the transfer overlaps layer i's recompute.  Each forward pass has its own
chain, so several forwards before one backward stay correct (they only lose the prefetch).  With offload=False the input stays
on the device (plain non-reentrant-style checkpointing).  On the CPU it simply keeps the input.

Lean recompute (on by default): while a layer is recomputed for its backward, `recomputing()` is True
(thread-local, only around that call of `fn`), and the LoRA Functions in kernels.lora use it to skip
work whose result this backward never reads and to keep the weights they dequantize for the backward
of the same call (see lora.py).  The recompute's *outputs* are only used for their graph: backward()
is given the gradients that arrived from above, never their values.  `lean_recompute=False` turns the
flag off (a full, plain recompute), for comparison.

It does not know transformers: kernels.patch installs it as each decoder layer's
`_gradient_checkpointing_func`.  It does not replay RNG state, so layers must be deterministic in
training (no dropout), which the LoRA recipes here are (dropout 0), and a graph can be backpropagated
once (no retain_graph).
"""

from __future__ import annotations

import threading

import torch

_LOCAL = threading.local()


def recomputing() -> bool:
    """True while a checkpointed function is being recomputed for its backward in lean mode."""
    return getattr(_LOCAL, "recomputing", False)


def layer_memo() -> dict | None:
    """A dict private to the checkpointed call running now (None outside one): its forward fills it and
    its recompute sees the same dict again, so what the forward read once (kernels.patch: each
    projection's adapters and base weight) is reused instead of read again.  It lives as long as that
    call's autograd node, and is dropped when its backward starts the recompute's own backward."""
    return getattr(_LOCAL, "memo", None)


class _Stash:
    """A layer input kept for the backward: on the device, or in pinned host memory."""

    def __init__(self, x: torch.Tensor, offload: bool, stream) -> None:
        self.device, self.requires_grad = x.device, x.requires_grad
        self.x = None if offload else x
        self.host = self.ready = self.back = None
        if offload:
            self.host = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
            stream.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(stream):
                self.host.copy_(x, non_blocking=True)
                x.record_stream(stream)  # keep x's memory until the copy is done
                self.ready = torch.cuda.Event()
                self.ready.record(stream)

    def prefetch(self, stream) -> None:
        if self.host is None or self.back is not None:
            return
        with torch.cuda.stream(stream):
            stream.wait_event(self.ready)
            self.back = self.host.to(self.device, non_blocking=True)
            self.ready = torch.cuda.Event()
            self.ready.record(stream)

    def get(self, stream) -> torch.Tensor:
        if self.host is None:
            return self.x
        self.prefetch(stream)
        cur = torch.cuda.current_stream(self.device)
        cur.wait_event(self.ready)
        self.back.record_stream(cur)
        x, self.back, self.host = self.back, None, None
        return x


class _Chain:
    """Stashes of one forward pass, in layer order, so a backward can prefetch the previous layer."""

    def __init__(self) -> None:
        self.stashes: list[_Stash | None] = []


_CURRENT = [_Chain()]  # the chain the next checkpointed layer joins
_STREAMS: dict[torch.device, torch.cuda.Stream] = {}


def _copy_stream(device: torch.device):
    if device not in _STREAMS:
        _STREAMS[device] = torch.cuda.Stream(device)
    return _STREAMS[device]


class OffloadedCheckpointFunction(torch.autograd.Function):
    """out = fn(hidden, *args) without saved activations; hidden stashed (host or device)."""

    @staticmethod
    def forward(ctx, fn, offload, lean, anchor, hidden, *args):
        offload = offload and hidden.is_cuda
        stream = _copy_stream(hidden.device) if offload else None
        before, memo_before, memo = recomputing(), layer_memo(), {}
        _LOCAL.recomputing = False  # a checkpoint nested in a recompute runs a real forward first
        _LOCAL.memo = memo
        try:
            with torch.no_grad():
                out = fn(hidden, *args)
        finally:
            _LOCAL.recomputing, _LOCAL.memo = before, memo_before
        ctx.memo = memo
        ctx.fn, ctx.stash, ctx.stream, ctx.lean = fn, _Stash(hidden, offload, stream), stream, lean
        ctx.chain = _CURRENT[0]
        ctx.index = len(ctx.chain.stashes)
        ctx.chain.stashes.append(ctx.stash)
        ctx.save_for_backward(*args)
        ctx.tuple_out = isinstance(out, tuple)
        return out

    @staticmethod
    def backward(ctx, *douts):
        stash, stashes = ctx.stash, ctx.chain.stashes
        prev = stashes[ctx.index - 1] if ctx.index > 0 else None
        if prev is not None and prev.host is not None:
            prev.prefetch(_copy_stream(prev.device))  # overlaps this layer's recompute
        x = stash.get(ctx.stream).detach().requires_grad_(stash.requires_grad)
        stashes[ctx.index] = ctx.stash = None  # nothing keeps the input once it is back
        args = ctx.saved_tensors
        before, memo_before = recomputing(), layer_memo()
        _LOCAL.recomputing, _LOCAL.memo = ctx.lean, ctx.memo
        try:
            with torch.enable_grad():
                out = ctx.fn(x, *args)
        finally:
            _LOCAL.recomputing, _LOCAL.memo = before, memo_before
            ctx.memo = None
        outs = out if ctx.tuple_out else (out,)
        pairs = [(o, d) for o, d in zip(outs, douts, strict=False) if d is not None and o.requires_grad]
        if pairs:
            torch.autograd.backward([o for o, _ in pairs], [d for _, d in pairs])
        return (None, None, None, None, x.grad if x.requires_grad else None) + (None,) * len(args)


def offloaded_checkpoint(
    fn, hidden: torch.Tensor, *args, offload: bool = True, lean_recompute: bool = True, **kwargs
):
    """Checkpoint `fn(hidden, *args, **kwargs)`; keyword arguments are bound into fn, not saved.
    lean_recompute: set `recomputing()` during the recompute (see the module docstring)."""
    if kwargs:
        inner = fn

        def fn(*a):
            return inner(*a, **kwargs)

    if ctx_first_layer(hidden):
        _CURRENT[0] = _Chain()
    # the anchor makes the output require grad even when no input does (the layer's LoRA weights do)
    anchor = _anchor(hidden.device)
    return OffloadedCheckpointFunction.apply(fn, offload, lean_recompute, anchor, hidden, *args)


_ANCHORS: dict[torch.device, torch.Tensor] = {}


def _anchor(device: torch.device) -> torch.Tensor:
    if device not in _ANCHORS:
        _ANCHORS[device] = torch.empty(0, device=device, requires_grad=True)
    return _ANCHORS[device]


def ctx_first_layer(hidden: torch.Tensor) -> bool:
    """True when `hidden` does not come from another checkpointed layer (a new forward pass begins)."""
    node = hidden.grad_fn
    return node is None or "OffloadedCheckpoint" not in type(node).__name__


def make_checkpoint_func(offload: bool = True, lean_recompute: bool = True):
    """A `_gradient_checkpointing_func` for transformers layers: func(partial_forward, *args)."""

    def checkpoint_func(fn, hidden, *args, **kwargs):
        return offloaded_checkpoint(
            fn, hidden, *args, offload=offload, lean_recompute=lean_recompute, **kwargs
        )

    checkpoint_func.tunesmith_offload = offload
    checkpoint_func.tunesmith_lean = lean_recompute
    return checkpoint_func
