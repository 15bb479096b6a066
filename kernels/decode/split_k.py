"""Split-K without a second kernel: the last program of an output tile to arrive adds the partial sums.

Knows torch and triton only.  A decode projection splits its K dimension over several programs so the
GPU has enough in flight (nf4_rows, lora_rows).  Each program stores its fp32 partial sums, then takes a
ticket from a per-tile counter; the one that draws the last ticket adds every split's partial in the
fixed order s = 0, 1, ... (so the result is deterministic, and bitwise the same as a separate reduce
kernel's) and resets the counter to zero for the next launch.  This saves one launch per projection: a
decode token step is a thousand small kernels, and each costs a few microseconds however little it does.

The counters live in one zeroed int32 buffer per device (`tile_counters`), reused by every launch: two
launches must not overlap on different streams (the decode step runs on one stream).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_COUNTERS: dict[tuple[str, int | None], torch.Tensor] = {}


def tile_counters(device: torch.device, tiles: int) -> torch.Tensor:
    """A zeroed int32 buffer of at least `tiles` counters on `device`, kept and reused (each launch
    leaves its counters at zero).  Grown outside CUDA-graph capture only: a buffer made during capture
    belongs to the graph's memory pool, so it is used for that launch and not kept."""
    key = (device.type, device.index)
    buf = _COUNTERS.get(key)
    if buf is not None and buf.numel() >= tiles:
        return buf
    size = max(1024, triton.next_power_of_2(tiles))
    fresh = torch.zeros(size, dtype=torch.int32, device=device)
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return fresh
    _COUNTERS[key] = fresh
    return fresh


@triton.jit
def arrive(COUNT, tile, SPLIT: tl.constexpr):
    """Called by every split of `tile` after storing its partial sums: True for the last to arrive
    (its loads then see every split's stores), which also resets the counter for the next launch."""
    tl.debug_barrier()  # every thread's partial stores come before this program's ticket
    ticket = tl.atomic_add(COUNT + tile, 1, sem="acq_rel", scope="gpu")
    last = ticket == SPLIT - 1
    if last:
        tl.atomic_xchg(COUNT + tile, 0, sem="relaxed", scope="gpu")
    return last


__all__ = ["arrive", "tile_counters"]
