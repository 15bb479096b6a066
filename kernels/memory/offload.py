"""Gradient checkpointing of decoder layers whose saved inputs live in pinned host memory.

Knows torch only; kernels.patch installs it as each decoder layer's `_gradient_checkpointing_func`.
`offloaded_checkpoint(fn, hidden, *args)` runs `fn` without keeping activations, copies `hidden` to
pinned host memory (a block of memory.pinned_pool, its exact size) on a side stream, and in the
backward prefetches it (one layer ahead), recomputes `fn` with grad and backpropagates; with
offload=False the input stays on the device.  While a layer is
recomputed `recomputing()` is True (the lean recompute of ops.lora).  In the first forward,
`keep_for_recompute(key, items)` hands values to the recompute (`kept_for_recompute(key)`): the stash,
bounded per pass by the host budget.  `replaying_rng(func)` replays a layer's random state in its
recompute.  A graph can be backpropagated once (no retain_graph).  Design and arithmetic:
kernels/DESIGN.md.
"""

from __future__ import annotations

import threading
import weakref

import torch

from .host_budget import HostBudget, HostMemoryShort, HostPlan, pinned_bytes, plan_pass, stash_fits_device
from .pinned_pool import POOL

_LOCAL = threading.local()
REPLAYS_RNG = "replays_rng"  # in a layer_memo(): this call's recompute draws what its forward drew


def recomputing() -> bool:
    """True while a checkpointed function is being recomputed for its backward in lean mode."""
    return getattr(_LOCAL, "recomputing", False)


def layer_memo() -> dict | None:
    """A dict private to the checkpointed call running now (None outside one): its forward fills it and
    its recompute sees the same dict again, so what the forward read once (kernels.patch: each
    projection's adapters and base weight) is reused instead of read again.  It lives as long as that
    call's autograd node, and is dropped when its backward starts the recompute's own backward."""
    return getattr(_LOCAL, "memo", None)


def keeping() -> bool:
    """True in the first forward of a checkpointed call whose recompute will take what
    `keep_for_recompute` is given (offload and lean recompute)."""
    return getattr(_LOCAL, "keeping", None) is not None


def keep_for_recompute(key, items: tuple) -> bool:
    """Hands `items` to the recompute of the checkpointed call running now, under `key`; its tensors
    go to pinned host memory when offloading, other items (ints, tuples, None) are held as they are.
    False (nothing kept) outside such a forward (see `keeping`)."""
    call = getattr(_LOCAL, "keeping", None)
    if call is None:
        return False
    nbytes = sum(pinned_bytes(x.nbytes) for x in items if isinstance(x, torch.Tensor))
    if not call.chain.admit(nbytes):
        return False  # over the forward pass's budget: the recompute computes it again
    call.account.hold(nbytes)
    call.kept[key] = _Stash(items, call.stream, nbytes, call.chain.budget)
    return True


def kept_for_recompute(key) -> tuple | None:
    """In a lean recompute: the items its forward kept under `key`, tensors on the device again, given
    up by the stash (each is taken once); None when nothing was kept."""
    kept = getattr(_LOCAL, "kept", None)
    stash = None if kept is None else kept.pop(key, None)
    if stash is None:
        return None
    items = stash.get()
    account = getattr(_LOCAL, "account", None)
    if account is not None:
        account.release(stash.nbytes)
    return items


def is_kept(key) -> bool:
    """In a lean recompute: whether its forward kept something under `key` not taken yet."""
    kept = getattr(_LOCAL, "kept", None)
    return kept is not None and key in kept


class _KeptValue(torch.autograd.Function):
    """Returns the kept tensor (held by a non-tensor box, so autograd sees no input of it); its
    gradient goes to `graph` unchanged."""

    @staticmethod
    def forward(ctx, graph, box):
        return box[0]

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def with_kept_value(graph: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """`value` (what the first forward computed, kept for this recompute) in place of `graph`'s value,
    with `graph`'s place in the autograd graph: for a recompute that did not form `graph` for real
    (kernels.patch: a layer's residual stream after its attention block, whose o projection it
    skipped).  Same shape and dtype required."""
    if value.shape != graph.shape or value.dtype != graph.dtype:
        raise ValueError(f"kept {tuple(value.shape)} {value.dtype} for {tuple(graph.shape)} {graph.dtype}")
    return _KeptValue.apply(graph, [value])


def _swap(state: tuple) -> tuple:
    """Sets this thread's (recomputing, memo, keeping, kept, account) and returns the ones it replaces."""
    old = (
        recomputing(),
        layer_memo(),
        getattr(_LOCAL, "keeping", None),
        getattr(_LOCAL, "kept", None),
        getattr(_LOCAL, "account", None),
    )
    _LOCAL.recomputing, _LOCAL.memo, _LOCAL.keeping, _LOCAL.kept, _LOCAL.account = state
    return old


class _Stash:
    """Items kept for a backward: as they are, or (stream given) their tensors in pinned host memory
    (blocks of the pinned pool), copied on that side stream after the work queued so far, and brought
    back by prefetch/get.  The blocks go back to the pool with the event after the copy that reads them
    back (or, for a stash dropped unread, the copy that wrote them): the pool hands a block out again
    only ordered after it, so no copy ever writes a block another still reads."""

    def __init__(self, items: tuple, stream, nbytes: int = 0, budget: HostBudget | None = None) -> None:
        self.items, self.where = items, "device"
        self.stream: torch.cuda.Stream | None = None
        self.ready: torch.cuda.Event | None = None
        self.nbytes = nbytes  # what it holds of the host budget (pinned bytes)
        self.device = next((x.device for x in items if isinstance(x, torch.Tensor)), None)
        self._blocks: list[torch.Tensor] = []  # the pool's blocks holding the items, while on the host
        self._give_back: weakref.finalize | None = None
        if stream is not None and self.device is not None and self.device.type == "cuda":
            self.stream, self.where = stream, "host"
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                self.items = tuple(
                    _to_host(x, stream, self._blocks, budget) if isinstance(x, torch.Tensor) else x
                    for x in items
                )
                self.ready = _event(stream)
            # dropped unread (a graph without its backward): back after the copies that wrote them
            self._give_back = weakref.finalize(self, _give_blocks, self._blocks, self.ready)

    def prefetch(self) -> None:
        if self.where != "host":
            return
        assert self.stream is not None and self.ready is not None  # set with where = "host"
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(self.ready)
            back = (
                x.to(self.device, non_blocking=True) if isinstance(x, torch.Tensor) else x for x in self.items
            )
            self.items, self.where, self.ready = tuple(back), "coming", _event(self.stream)
        if self._give_back is not None and self._give_back.detach():
            _give_blocks(self._blocks, self.ready)  # free once the copies just queued have read them

    def get(self) -> tuple:
        """The items on the device, ordered after their copy on the current stream; the stash lets go."""
        if self.where != "device":
            self.prefetch()
            cur = torch.cuda.current_stream(self.device)
            assert self.ready is not None  # prefetch recorded it
            cur.wait_event(self.ready)
            for x in self.items:
                if isinstance(x, torch.Tensor):
                    x.record_stream(cur)
        items, self.items, self.where = self.items, (), "taken"
        return items


def _to_host(x: torch.Tensor, stream, blocks: list, budget: HostBudget | None) -> torch.Tensor:
    """A copy of `x` queued on `stream` into a block of the pinned pool (appended to `blocks`)."""
    block = POOL.take(x.nbytes, budget, stream)
    blocks.append(block)
    # x's own strides where dense (as empty_like lays it out): the attention output (transposed heads)
    # comes back laid out as the backward kernels expect, with no copy to re-layout it
    strides = torch.empty_like(x, device="meta").stride()
    host = (
        block.view(x.dtype).as_strided(x.shape, strides) if x.numel() else torch.empty_like(x, device="cpu")
    )
    host.copy_(x, non_blocking=True)
    x.record_stream(stream)  # keep x's memory until the copy is done
    return host


def _give_blocks(blocks, after) -> None:
    for block in blocks:
        POOL.give(block, after)
    blocks.clear()


def _event(stream):
    event = torch.cuda.Event()
    event.record(stream)
    return event


class _Account:
    """The host-budget bytes one checkpointed call holds (its input, its stash), given back as they
    return to the device, or all at once when the call is dropped without a backward."""

    def __init__(self, budget: HostBudget | None) -> None:
        self.budget, self.held = budget, 0

    def hold(self, nbytes: int) -> None:
        self.held += nbytes

    def release(self, nbytes: int) -> None:
        nbytes = min(nbytes, self.held)
        self.held -= nbytes
        if self.budget is not None and nbytes:
            self.budget.give(nbytes)

    def release_all(self) -> None:
        self.release(self.held)


class _Call:
    """What one checkpointed call keeps for its backward: its input, and what its forward handed to
    keep_for_recompute (by key)."""

    def __init__(self, stream, chain: _Chain) -> None:
        self.stream = stream  # the copy stream when offloading, else None
        self.chain = chain
        self.input: _Stash | None = None
        self.kept: dict = {}
        self.account = _Account(chain.budget)
        weakref.finalize(self, self.account.release_all)  # a graph dropped without its backward

    def prefetch(self) -> None:
        for stash in (self.input, *self.kept.values()):
            if stash is not None:
                stash.prefetch()


class _Chain:
    """Calls of one forward pass, in layer order, so a backward can prefetch the previous layer.
    Weak references: a forward whose graph is dropped without a backward leaves nothing held here."""

    def __init__(
        self, keep_budget: int | None = None, budget: HostBudget | None = None, stash_ratio: float = 0.0
    ) -> None:
        self.calls: list[weakref.ref[_Call] | None] = []
        self.keep_budget, self.kept_bytes = keep_budget, 0
        self.stash_ratio = stash_ratio  # a layer's stash per byte of its input (0: not known)
        self.budget = budget  # the host budget (kernels.memory.host_budget) shared by every pass, or None
        self.plan: HostPlan | None = None
        # input bytes taken from the budget for layers that have not run yet (given back if the pass
        # ends early: an exception, a graph dropped mid-forward)
        self.reserved = _Account(budget)
        weakref.finalize(self, self.reserved.release_all)

    def plan_inputs(self, n_layers: int, hidden: torch.Tensor, offload: bool) -> None:
        """At the pass's first layer: which layer inputs go to host memory (reserved now, before any
        stash), which stay on the device; the stash's share is what is left."""
        if self.budget is None:
            return
        self.plan = plan_pass(n_layers, hidden.nbytes, self.budget.available, self.keep_budget)
        self.keep_budget = self.plan.stash_bytes
        if offload and hidden.is_cuda:
            _trim_host_cache(self.budget, self.plan.host_input_bytes + self.plan.stash_bytes)
            if self.plan.device_inputs:
                _check_device_room(self.plan)
            if self.keep_budget and not stash_fits_device(
                hidden.nbytes * self.stash_ratio, free_device_bytes()
            ):
                self.keep_budget = 0  # the GPU needs the room: the recompute forms the attention again
        if self.budget.take(self.plan.host_input_bytes):  # planned within what was available
            self.reserved.hold(self.plan.host_input_bytes)

    def input_goes_to_host(self, index: int) -> bool:
        return self.plan is None or index < self.plan.host_inputs

    def assign_input(self, call: _Call) -> None:
        """Moves one host input's reservation from the pass to the call that holds it."""
        cost = pinned_bytes(self.plan.input_bytes) if self.plan is not None else 0
        cost = min(cost, self.reserved.held)
        self.reserved.held -= cost
        call.account.hold(cost)

    def admit(self, nbytes: int) -> bool:
        """Counts `nbytes` more kept for recompute in this pass, unless that would pass the pass's
        stash budget or the host budget."""
        if self.keep_budget is not None and self.kept_bytes + nbytes > self.keep_budget:
            return False
        if self.budget is not None and not self.budget.take(nbytes):
            return False
        self.kept_bytes += nbytes
        return True


def _trim_host_cache(budget: HostBudget, need: int) -> None:
    """Gives torch's caching host allocator's unused pinned blocks back to the system when keeping them
    would take the process past the budget: blocks cached for other sizes are not reused, so they would
    pile up far past the budget (BENCHMARKS.md, host budget).  The kernels pin through memory.pinned_pool
    (which trims its own free blocks as it registers new ones); torch's allocator holds only the pool's
    fallback blocks, where registration failed, and pins made outside the kernels."""
    stats = getattr(torch.cuda, "host_memory_stats", None)
    empty = getattr(torch.cuda, "host_empty_cache", None) or getattr(torch._C, "_host_emptyCache", None)
    if stats is None or empty is None:
        return
    pinned = stats().get("allocated_bytes.current", 0)  # held from the system: in use and cached
    if pinned + need > budget.limit:
        empty()


def free_device_bytes() -> int:
    """What this process may still allocate on the current GPU: the driver's free memory and torch's
    own free blocks, within a cap set by set_per_process_memory_fraction (a smaller card emulated)."""
    free, total = torch.cuda.mem_get_info()
    free += torch.cuda.memory_reserved() - torch.cuda.memory_allocated()  # torch's own free blocks
    fraction = getattr(torch.cuda, "get_per_process_memory_fraction", lambda: 1.0)()
    if fraction < 1.0:  # a process capped to part of the card (set_per_process_memory_fraction)
        free = min(free, int(total * fraction) - torch.cuda.memory_allocated())
    return max(0, free)


def _check_device_room(plan: HostPlan) -> None:
    """Raises HostMemoryShort when the inputs that stay on the GPU do not fit its free memory."""
    free = free_device_bytes()
    need = plan.device_inputs * plan.input_bytes
    if need > free:
        raise HostMemoryShort(
            f"this length needs {plan.host_input_bytes / 2**30:.1f} GiB of host memory for the layer "
            f"inputs and {need / 2**30:.1f} GiB more on the GPU, which has {free / 2**30:.1f} GiB free; "
            "the host-memory budget allows no more."
        )


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
        keep = offload and lean  # offload requested: on the CPU the stash simply holds the items
        offload = offload and hidden.is_cuda
        chain = _CURRENT[0]
        index = len(chain.calls)
        memo: dict = {}
        call = _Call(_copy_stream(hidden.device) if offload else None, chain)
        # recomputing off: a checkpoint nested in a recompute runs a real forward first
        old = _swap((False, memo, call if keep else None, None, None))
        try:
            with torch.no_grad():
                out = fn(hidden, *args)
        finally:
            _swap(old)
        # the input goes to host memory if the pass's plan found room for it, else stays on the device
        to_host = chain.input_goes_to_host(index)
        if to_host:
            chain.assign_input(call)
        call.input = _Stash((hidden,), call.stream if to_host else None, budget=chain.budget)
        ctx.fn, ctx.call, ctx.memo, ctx.lean = fn, call, memo, lean
        ctx.input_requires_grad = hidden.requires_grad
        ctx.chain = chain
        ctx.index = index
        ctx.chain.calls.append(weakref.ref(call))
        ctx.save_for_backward(*args)
        ctx.tuple_out = isinstance(out, tuple)
        return out

    @staticmethod
    def backward(ctx, *douts):
        call, calls = ctx.call, ctx.chain.calls
        prev = calls[ctx.index - 1] if ctx.index > 0 else None
        prev = prev() if prev is not None else None
        if prev is not None:
            prev.prefetch()  # overlaps this layer's recompute
        (x,) = call.input.get()
        call.account.release(call.account.held - sum(st.nbytes for st in call.kept.values()))  # the input
        x = x.detach().requires_grad_(ctx.input_requires_grad)
        calls[ctx.index] = ctx.call = None  # nothing keeps the input once it is back
        args = ctx.saved_tensors
        old = _swap((ctx.lean, ctx.memo, None, call.kept if ctx.lean else None, call.account))
        try:
            with torch.enable_grad():
                out = ctx.fn(x, *args)
        finally:
            _swap(old)
            ctx.memo = None
            call.kept.clear()  # what the recompute did not take goes now
            call.account.release_all()
        outs = out if ctx.tuple_out else (out,)
        pairs = [(o, d) for o, d in zip(outs, douts, strict=False) if d is not None and o.requires_grad]
        for o, _ in pairs:
            _drop_unread_value(o)
        if pairs:
            torch.autograd.backward([o for o, _ in pairs], [d for _, d in pairs])
        return (None, None, None, None, x.grad if x.requires_grad else None) + (None,) * len(args)


def _drop_unread_value(out: torch.Tensor) -> None:
    """Frees the memory of a recompute's output that only a sum formed (a decoder layer's residual
    add): the backward is handed the gradient from above and the add's backward reads neither operand
    nor result, so the value is never read again; its graph stays.  A whole hidden state of GPU memory
    through the layer's backward at long context.  Anything else (a view, another op that may have
    saved its result) is left alone."""
    node = out.grad_fn
    if node is not None and type(node).__name__ == "AddBackward0" and out._base is None:
        out.untyped_storage().resize_(0)


def offloaded_checkpoint(
    fn,
    hidden: torch.Tensor,
    *args,
    offload: bool = True,
    lean_recompute: bool = True,
    keep_budget: int | None = None,
    host_budget: HostBudget | None = None,
    n_layers: int = 1,
    stash_ratio: float = 0.0,
    **kwargs,
):
    """Checkpoint `fn(hidden, *args, **kwargs)`; keyword arguments are bound into fn, not saved.
    lean_recompute: set `recomputing()` during the recompute (see the module docstring).
    keep_budget: bytes that keep_for_recompute may hold per forward pass (None: no limit), set by the
    pass's first layer.
    host_budget: the pinned host memory everything here may hold (kernels.memory.host_budget), shared with
    the embedding table; with it, the pass's first layer plans its `n_layers` inputs first (host where
    they fit, else the device) and the stash gets what is left.  None: no limit.
    stash_ratio: the bytes a layer stashes per byte of its input (kernels.patch works it out from the
    model's shapes); on the GPU the pass keeps no stash when two layers' of it would pass the GPU's share
    (host_budget.stash_fits_device).  0: not known, no such limit."""
    if kwargs:
        inner = fn

        def fn(*a):
            return inner(*a, **kwargs)

    if not torch.is_grad_enabled():  # no backward can follow (evaluation, a reference model's
        return fn(hidden, *args)  # log-probs under no_grad): nothing to stash or keep
    if ctx_first_layer(hidden):
        _CURRENT[0] = _Chain(keep_budget, host_budget, stash_ratio)
        _CURRENT[0].plan_inputs(n_layers, hidden, offload)
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


def make_checkpoint_func(
    offload: bool = True,
    lean_recompute: bool = True,
    keep_budget: int | None = None,
    host_budget: HostBudget | None = None,
    n_layers: int = 1,
    stash_ratio: float = 0.0,
):
    """A `_gradient_checkpointing_func` for transformers layers: func(partial_forward, *args)."""

    def checkpoint_func(fn, hidden, *args, **kwargs):
        return offloaded_checkpoint(
            fn,
            hidden,
            *args,
            offload=offload,
            lean_recompute=lean_recompute,
            keep_budget=keep_budget,
            host_budget=host_budget,
            n_layers=n_layers,
            stash_ratio=stash_ratio,
            **kwargs,
        )

    checkpoint_func.__dict__.update(tunesmith_offload=offload, tunesmith_lean=lean_recompute)
    return checkpoint_func


class _RandomReplay:
    """`fn` of one checkpointed call: its first run (the forward) notes the state it draws random numbers
    from (the CPU generator, the CUDA generator of the input's device, autocast), its second run (the
    recompute) starts from that state again and puts the caller's back after."""

    def __init__(self, fn, device: torch.device) -> None:
        self.fn, self.device = fn, device
        self.state: tuple | None = None

    def __call__(self, *args, **kwargs):
        if self.state is None:
            dev = self.device
            cuda = torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None
            autocast = (
                torch.is_autocast_enabled(dev.type),
                torch.get_autocast_dtype(dev.type),
                torch.is_autocast_cache_enabled(),
            )
            self.state = (torch.get_rng_state(), cuda, autocast)
            memo = layer_memo()
            if memo is not None:
                memo[REPLAYS_RNG] = True
            return self.fn(*args, **kwargs)
        cpu, cuda, (enabled, dtype, cache) = self.state
        with torch.random.fork_rng(devices=[self.device] if cuda is not None else [], device_type="cuda"):
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state(cuda, self.device)
            with torch.autocast(self.device.type, dtype=dtype, enabled=enabled, cache_enabled=cache):
                return self.fn(*args, **kwargs)


def replaying_rng(func):
    """The checkpoint function `func` (make_checkpoint_func's) for a layer that draws random numbers
    (dropout): each call's recompute draws what its forward drew (module docstring)."""

    def checkpoint_func(fn, hidden, *args, **kwargs):
        return func(_RandomReplay(fn, hidden.device), hidden, *args, **kwargs)

    checkpoint_func.__dict__.update(func.__dict__)  # tunesmith_offload, tunesmith_lean, ...
    checkpoint_func.__dict__.update(tunesmith_replay_rng=True, tunesmith_plain=func)
    return checkpoint_func
