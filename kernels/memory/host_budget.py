"""One budget for all the pinned host memory the kernels hold, counted as the allocator holds it.

Knows torch only.  Three things pin: the frozen input embedding table, each checkpointed layer's input
(memory.offload) and the stash.  They draw on one `HostBudget` in that order of priority; bytes are
counted as pinned (torch's caching host allocator rounds each block up to a power of two).
`default_host_budget` is the memory available at the start less headroom for the desktop;
`plan_host_memory` does the same arithmetic before anything is loaded, and `longest_tokens` names the
longest length that fits.  The order and the arithmetic: kernels/DESIGN.md.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

GIB = 2**30


def pinned_bytes(nbytes: int) -> int:
    """The bytes torch's caching host allocator pins for a request of `nbytes` (next power of two)."""
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


def default_host_budget() -> int:
    """Memory available now, less headroom for the desktop and the rest of the process: the larger of
    4 GiB and a fifth of the machine's memory.  8 GiB where the platform does not say.
    `TUNESMITH_HOST_BUDGET_GIB` sets it outright (benchmarks, machines shared with other work)."""
    override = os.environ.get("TUNESMITH_HOST_BUDGET_GIB")
    if override:
        return int(float(override) * GIB)
    info = _meminfo()
    if info is None:
        return 8 * GIB
    available, total = info
    return max(0, available - max(4 * GIB, total // 5))


def default_stash_cap() -> int:
    """The most the stash may pin per forward pass within the budget: a quarter of the machine's
    memory (8 GiB where the platform does not say)."""
    info = _meminfo()
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
