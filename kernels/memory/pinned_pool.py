"""Page-locked host memory of the size asked for, kept and reused: where the kernels pin what they offload.

Knows torch only.  torch's caching host allocator (`pin_memory=True`) rounds every block up to a power of
two: at 163,840 tokens of Llama-3.1-8B a 1.25 GiB layer input pins 2 GiB, 32 layers 64 GiB where 40 are
needed.  `PinnedPool` page-locks ordinary memory instead (`torch.empty`, then cudaHostRegister), rounded
only as host_budget.pinned_bytes says, and keeps the blocks for the next step: `take` serves a request
from the smallest free block large enough (rows are not padded, so a shorter step reuses a longer one's
blocks), `give` takes a block back with the event after which no copy touches it any more, `trim` lets
free blocks go when holding them would pass the host budget.  Where a block cannot be registered it
comes from torch's pinned allocator (counted as torch pins it), and without CUDA it stays pageable.
`POOL` is the process's pool (kernels.memory.offload, kernels.patch's embedding table); the budget's
arithmetic: kernels/DESIGN.md.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from .host_budget import HostBudget, pinned_bytes, torch_pinned_bytes

log = logging.getLogger(__name__)
try:  # registration covers whole pages: a block starts on one and owns every page it touches
    PAGE = int(os.sysconf("SC_PAGE_SIZE"))
except (AttributeError, ValueError, OSError):  # Windows has no sysconf
    PAGE = 4096

Undo = Callable[[], None]
_WORKER: list[ThreadPoolExecutor] = []
_WORKER_LOCK = threading.Lock()
_LOGGED: set[str] = set()
_WORKER_NAME = "tunesmith-pin"


def _on_worker(device: int, fn, *args):
    """`fn(*args)` on a thread of its own, with the caller's CUDA device current there: a failed CUDA
    runtime call also sets the calling thread's "last error", which torch's next kernel-launch check
    would raise as that kernel's; and the device, so that no context is made on card 0 for a process
    that trains on another (each rank of a multi-GPU run)."""

    def call():
        torch.cuda.set_device(device)
        return fn(*args)

    if threading.current_thread().name.startswith(_WORKER_NAME):  # a finalizer run there by the GC
        return call()
    with _WORKER_LOCK:
        if not _WORKER:
            _WORKER.append(ThreadPoolExecutor(1, thread_name_prefix=_WORKER_NAME))
    return _WORKER[0].submit(call).result()


def register_host(span: torch.Tensor) -> Undo | str:
    """Page-locks `span`'s memory (cudaHostRegister, default flags: mapped and portable to every device
    where addressing is unified, which the GPU's view of the embedding table needs); returns the undo
    (cudaHostUnregister, to run before the memory is freed), or why it could not."""
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        cudart, device = torch.cuda.cudart(), torch.cuda.current_device()
        ptr, nbytes = span.data_ptr(), span.nbytes
        err = _on_worker(device, cudart.cudaHostRegister, ptr, nbytes, 0)
    except (RuntimeError, AttributeError, AssertionError) as exc:  # a build without the runtime bindings
        return f"cudaHostRegister is not available ({exc})"
    if err != cudart.cudaError.success:
        return f"cudaHostRegister failed: {cudart.cudaGetErrorString(err)}"

    def undo() -> None:
        err = _on_worker(device, cudart.cudaHostUnregister, ptr)
        if err != cudart.cudaError.success:
            log.warning("tunesmith.kernels: cudaHostUnregister failed: %s", cudart.cudaGetErrorString(err))

    return undo


def _log_once(reason: str) -> None:
    if reason not in _LOGGED:
        _LOGGED.add(reason)
        instead = (
            "torch's pinned allocator serves them, rounded up to a power of two"
            if torch.cuda.is_available()
            else "they stay pageable"
        )
        log.warning(
            "tunesmith.kernels: host blocks not page-locked by registration (%s): %s", reason, instead
        )


def _unregister(undo: Undo, span: torch.Tensor) -> None:
    del span  # held until the undo ran: the memory is freed only once no longer registered
    undo()


class _Block:
    """One host block: `data` its `size` usable bytes, `cost` what it pins (the budget counts it),
    `after` the event of the last copy that used it (None: nothing pending), `pinned` False where it
    stayed pageable; `charged` the budget and surplus it took while in use."""

    def __init__(self, data: torch.Tensor, cost: int, pinned: bool, undo: Undo | None, span=None) -> None:
        self.data, self.size, self.cost, self.pinned = data, data.numel(), cost, pinned
        self.after: torch.cuda.Event | None = None
        self.charged: tuple[HostBudget, int] | None = None
        self.by_torch = pinned and undo is None  # from torch's pinned allocator, cached there when freed
        self.release = weakref.finalize(self, _unregister, undo, span) if undo is not None else None
        if self.release is not None:
            self.release.atexit = False  # at exit the process's memory goes anyway

    def free(self) -> None:
        if self.after is not None:
            self.after.synchronize()  # a copy may still read it
        if self.release is not None:
            self.release()


class PinnedPool:
    """Host blocks of exact sizes, in use or free; `held` is every byte they pin (or hold, pageable)."""

    def __init__(self, register: Callable[[torch.Tensor], Undo | str] = register_host) -> None:
        self.register = register
        self._free: list[_Block] = []  # by size
        self._used: dict[int, _Block] = {}  # by address
        # given back, not yet filed: `give` may run in a finalizer (a dropped graph's stash) while this
        # thread is inside `take`, so it only queues, and whoever holds the lock files the queue
        self._returned: deque[tuple[int, torch.cuda.Event | None]] = deque()
        self._lock = threading.Lock()
        self.held = 0

    @property
    def free_bytes(self) -> int:
        return sum(b.cost for b in self._free)

    @property
    def in_use(self) -> int:
        return len(self._used)

    def take(self, nbytes: int, budget: HostBudget | None = None, stream=None) -> torch.Tensor:
        """A uint8 view of `nbytes` bytes of host memory, page-locked where possible.  Its share,
        pinned_bytes(nbytes), is the caller's to count in `budget`; a larger block's surplus is charged
        here (given back with the block), and one whose surplus the budget cannot take is passed over.
        A block whose last copy may still run is ordered after it on `stream` (None: waited for here)."""
        if nbytes <= 0:
            return torch.empty(0, dtype=torch.uint8)
        want = pinned_bytes(nbytes)
        with self._lock:
            self._file_returned()
            block = self._best_fit(want, budget)
            if block is None:
                self._trim(budget, 0)
                block = self._new(want, budget)
            self._used[block.data.data_ptr()] = block
        after, block.after = block.after, None
        if after is not None and not after.query():
            if stream is not None:
                stream.wait_event(after)
            else:
                after.synchronize()
        return block.data[:nbytes]

    def page_locked(self, view: torch.Tensor) -> bool:
        """Whether `view` (from `take`, not given back yet) lies in page-locked memory: a registered
        block or torch's pinned one (torch's is_pinned() does not report registered memory on every
        version)."""
        with self._lock:
            block = self._used.get(view.data_ptr())
        return block is not None and block.pinned

    def give(self, view: torch.Tensor, after: torch.cuda.Event | None = None) -> None:
        """Takes back the block `view` (from `take`) came from; `after`: the event recorded after the last
        copy that reads or writes it (the block is handed out again only ordered after it)."""
        if view.numel() == 0:
            return
        self._returned.append((view.data_ptr(), after))
        if self._lock.acquire(blocking=False):  # else the holder (or the next call) files it
            try:
                self._file_returned()
            finally:
                self._lock.release()

    def _file_returned(self) -> None:
        while self._returned:
            address, after = self._returned.popleft()
            block = self._used.pop(address)
            block.after = after
            if block.charged is not None:
                budget, extra = block.charged
                budget.give(extra)
                block.charged = None
            bisect.insort(self._free, block, key=lambda b: b.size)

    def trim(self, budget: HostBudget | None, need: int = 0) -> int:
        """Frees free blocks, smallest first, while the budget's count, the free blocks and `need` more
        would pass its limit; returns the bytes freed."""
        with self._lock:
            self._file_returned()
            return self._trim(budget, need)

    def close(self) -> None:
        """Frees every free block (blocks in use go when they come back and the pool is gone)."""
        with self._lock:
            self._file_returned()
            while self._free:
                self._drop(self._free.pop())

    def _best_fit(self, want: int, budget: HostBudget | None) -> _Block | None:
        start = bisect.bisect_left(self._free, want, key=lambda b: b.size)
        for i in range(start, len(self._free)):
            block = self._free[i]
            extra = block.cost - want
            if extra and budget is not None:
                if not budget.take(extra):
                    continue  # its surplus does not fit the budget: a smaller new block might
                block.charged = (budget, extra)
            del self._free[i]
            return block
        return None

    def _trim(self, budget: HostBudget | None, need: int) -> int:
        # budget.used counts the blocks in use (and reservations, and the embedding table): the free
        # blocks are what the process pins beyond it
        freed, by_torch = 0, False
        free = self.free_bytes
        while self._free and budget is not None and budget.used + free + need > budget.limit:
            block = self._free.pop(0)
            free -= block.cost
            freed += block.cost
            by_torch |= block.by_torch
            self._drop(block)
        empty = getattr(torch.cuda, "host_empty_cache", None) or getattr(torch._C, "_host_emptyCache", None)
        if by_torch and empty is not None:
            empty()  # torch keeps what it pinned cached: give it back too
        return freed

    def _drop(self, block: _Block) -> None:
        self.held -= block.cost
        block.free()

    def _new(self, want: int, budget: HostBudget | None) -> _Block:
        span_bytes = -(-want // PAGE) * PAGE
        raw = torch.empty(span_bytes + PAGE, dtype=torch.uint8)
        start = -raw.data_ptr() % PAGE
        span = raw[start : start + span_bytes]
        undo = self.register(span)
        if not isinstance(undo, str):
            block = _Block(span[:want], want, True, undo, span)
        else:
            _log_once(undo)
            block = self._fallback(want, budget)
        self.held += block.cost
        return block

    def _fallback(self, want: int, budget: HostBudget | None) -> _Block:
        if torch.cuda.is_available():
            extra = torch_pinned_bytes(want) - want
            if not extra or budget is None or budget.take(extra):
                block = _Block(
                    torch.empty(want, dtype=torch.uint8, pin_memory=True), want + extra, True, None
                )
                block.charged = (budget, extra) if extra and budget is not None else None
                return block
        # pageable: copies to and from it are synchronous, but correct; counted as if pinned, so the
        # arithmetic is the same everywhere
        return _Block(torch.empty(want, dtype=torch.uint8), want, False, None)


POOL = PinnedPool()

__all__ = ["PAGE", "POOL", "PinnedPool", "register_host"]
