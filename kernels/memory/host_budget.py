"""One budget for all the pinned host memory the kernels hold, counted as the allocator holds it.

Knows torch only.  Three things pin: the frozen input embedding table, each checkpointed layer's input
(memory.offload) and the stash.  They draw on one `HostBudget` in that order of priority; bytes are
counted as pinned: exact sizes, rounded only as `pinned_bytes` says (memory.pinned_pool registers them).
`default_host_budget` is the memory available at the start less headroom for the desktop;
`plan_host_memory` does the same arithmetic before anything is loaded, and `longest_tokens` names the
longest length that fits.  The order and the arithmetic: kernels/DESIGN.md.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

GIB = 2**30
# Blocks from 2 MiB up are a whole number of 2 MiB (the huge-page size of x86-64): under 0.2% lost on a
# 1 GiB layer input, and steps a few tokens apart ask for the same size, so their blocks are reused.
# Smaller ones are a power of two from a 4 KiB page up: under 1 MiB lost each, few distinct sizes.
GRANULE = 2 * 2**20
SMALLEST = 4096


def pinned_bytes(nbytes: int) -> int:
    """The bytes a request of `nbytes` pins (memory.pinned_pool): a multiple of GRANULE from GRANULE up,
    below it the next power of two (at least SMALLEST).  core.context_plan keeps a torch-free copy."""
    if nbytes <= 0:
        return 0
    if nbytes >= GRANULE:
        return -(-int(nbytes) // GRANULE) * GRANULE
    return max(SMALLEST, torch_pinned_bytes(nbytes))


def torch_pinned_bytes(nbytes: int) -> int:
    """The bytes torch's caching host allocator pins for `nbytes` (the next power of two): where a block
    cannot be registered, the pool falls back on it."""
    if nbytes <= 0:
        return 0
    return 1 << (int(nbytes) - 1).bit_length()


class HostMemoryShort(RuntimeError):
    """A forward pass whose layer inputs fit neither the host-memory budget nor the GPU's free memory."""

    hint = "Lower the max length or the batch size, or free host memory (close other programs)."


class HostBudget:
    """A thread-safe count of pinned bytes against a limit; `peak` is the most ever held at once."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, int(limit))
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        return max(0, self.limit - self.used)

    def take(self, nbytes: int) -> bool:
        """Count `nbytes` more (already rounded as pinned), unless that passes the limit."""
        with self._lock:
            if self.used + nbytes > self.limit:
                return False
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            return True

    def give(self, nbytes: int) -> None:
        with self._lock:
            self.used = max(0, self.used - nbytes)

    def __repr__(self) -> str:
        return f"HostBudget(limit={self.limit / GIB:.2f} GiB, used={self.used / GIB:.2f}, peak={self.peak / GIB:.2f})"


def _meminfo() -> tuple[int, int] | None:
    """(available, total) bytes of this machine's memory, or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return fields["MemAvailable"], fields["MemTotal"]
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:  # other platforms: torch depends on psutil nowhere, so only where it is installed
        import psutil

        mem = psutil.virtual_memory()
        return int(mem.available), int(mem.total)
    except Exception:  # noqa: BLE001 - no psutil, or it cannot read this platform
        return None


def _env_gib(name: str) -> int | None:
    """Bytes from an environment variable in GiB ("64", "12.5"); None where unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        gib = float(value)
    except ValueError:
        gib = -1.0
    if not gib >= 0:  # also NaN
        raise ValueError(f"{name} must be a number of GiB (for example 64), not {value!r}")
    return int(gib * GIB)


def _memory() -> tuple[int, int] | None:
    """(available, total) bytes: this machine's, or as if it had `TUNESMITH_HOST_RAM_GIB` of RAM (a
    benchmark on a large host emulating a desktop): total that, available no more than that."""
    ram = _env_gib("TUNESMITH_HOST_RAM_GIB")
    info = _meminfo()
    if ram is None:
        return info
    return (ram if info is None else min(info[0], ram)), ram


def default_host_budget() -> int:
    """Memory available now, less headroom for the desktop and the rest of the process: the larger of
    4 GiB and a fifth of the machine's memory.  8 GiB where the platform does not say.
    `TUNESMITH_HOST_BUDGET_GIB` sets it outright (benchmarks, machines shared with other work), and wins
    over `TUNESMITH_HOST_RAM_GIB` (act as if the machine had that much RAM)."""
    override = _env_gib("TUNESMITH_HOST_BUDGET_GIB")
    if override is not None:
        return override
    info = _memory()
    if info is None:
        return 8 * GIB
    available, total = info
    return max(0, available - max(4 * GIB, total // 5))


def default_stash_cap() -> int:
    """The most the stash may pin per forward pass within the budget: a quarter of the machine's
    memory (or of `TUNESMITH_HOST_RAM_GIB`; 8 GiB where the platform does not say)."""
    info = _memory()
    return 8 * GIB if info is None else info[1] // 4


@dataclass(frozen=True)
class HostPlan:
    """Where one forward pass's layer inputs go, and what is left for the stash."""

    input_bytes: int  # one layer input as asked
    host_inputs: int  # layers whose input goes to pinned host memory
    device_inputs: int  # layers whose input stays in VRAM
    stash_bytes: int  # what the stash may pin after the inputs

    @property
    def host_input_bytes(self) -> int:
        return self.host_inputs * pinned_bytes(self.input_bytes)


# The stash is kept only while two layers' worth of it (the layer in its backward and the one prefetched)
# take at most this share of the GPU memory free when a pass starts.  Past it the GPU needs the room for
# the layer's working set more than the time the stash saves (the attention formed again in the
# recompute): at long context on a small card, keeping it is what would run out of memory.
STASH_GPU_SHARE = 0.25


def stash_fits_device(layer_stash_bytes: float, free_device: int) -> bool:
    """Whether a pass may keep a stash of `layer_stash_bytes` per layer with `free_device` bytes of GPU
    memory free at its start (STASH_GPU_SHARE)."""
    return 2 * layer_stash_bytes <= STASH_GPU_SHARE * free_device


def plan_pass(n_layers: int, input_bytes: int, available: int, stash_cap: int | None = None) -> HostPlan:
    """Split a pass's `n_layers` inputs of `input_bytes` each between host (up to `available` pinned
    bytes) and device; the stash gets the rest, at most `stash_cap`."""
    cost = pinned_bytes(input_bytes)
    host = n_layers if cost == 0 else min(n_layers, available // cost)
    left = available - host * cost
    stash = left if stash_cap is None else min(left, stash_cap)
    return HostPlan(input_bytes, host, n_layers - host, max(0, stash))


def plan_host_memory(
    n_layers: int,
    hidden_size: int,
    tokens: int,
    budget: int,
    free_vram: int | None,
    element_size: int = 2,
    table_bytes: int = 0,
) -> tuple[bool, HostPlan]:
    """Before loading: whether a pass of `tokens` tokens (batch x length) fits `budget` host bytes
    (after an embedding table of `table_bytes`, if it goes to host memory) plus `free_vram` for the
    inputs that do not; and the plan.  `free_vram` None: no GPU limit known (assume it fits)."""
    available = budget - pinned_bytes(table_bytes)
    if available < 0:  # the table then stays in VRAM, as patch_model decides
        available = budget
    plan = plan_pass(n_layers, tokens * hidden_size * element_size, available)
    fits = free_vram is None or plan.device_inputs * plan.input_bytes <= free_vram
    return fits, plan


def longest_tokens(
    n_layers: int,
    hidden_size: int,
    budget: int,
    free_vram: int | None,
    element_size: int = 2,
    table_bytes: int = 0,
    step: int = 1024,
) -> int:
    """The most tokens per forward pass (in multiples of `step`) whose layer inputs fit; 0 if none."""
    lo, hi = 0, 1 << 24  # 16M tokens: far past any card
    while hi - lo > step:
        mid = lo + max(step, (hi - lo) // 2 // step * step)
        fits, _ = plan_host_memory(n_layers, hidden_size, mid, budget, free_vram, element_size, table_bytes)
        if fits:
            lo = mid
        else:
            hi = mid
    return lo
