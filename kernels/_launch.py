"""Launch helpers shared by the kernel modules: block sizes, warp counts and input checks.

Knows torch and triton only.  It does not know any model: the op modules call these helpers to pick a
block that covers a row, to check shapes/dtypes with clear messages, and to decide how many programs
a row-reduction grid should use (the SM count on a GPU, a handful under TRITON_INTERPRET on the CPU).
"""

from __future__ import annotations

import functools
import os

import torch
import triton

# One program handles a whole row of this many elements at most (fp32 in registers).
MAX_ROW_BLOCK = 65536

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def interpreting() -> bool:
    """True when Triton runs its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def row_block(n_cols: int, what: str) -> int:
    """Power-of-two block covering `n_cols`, or a clear error when a row is too wide for one program."""
    block = triton.next_power_of_2(n_cols)
    if block > MAX_ROW_BLOCK:
        raise ValueError(f"{what}: rows of {n_cols} elements exceed the {MAX_ROW_BLOCK}-element limit")
    return block


def warps_for(block: int) -> int:
    """Warps per program for a row of `block` elements (more warps for wider rows)."""
    if block >= 32768:
        return 32
    if block >= 8192:
        return 16
    if block >= 2048:
        return 8
    return 4


@functools.lru_cache(maxsize=8)
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def n_programs(device: torch.device, n_rows: int) -> int:
    """Programs for a grid that loops over rows (partial sums per program): SMs on a GPU, few on CPU."""
    if device.type == "cuda":
        return max(1, min(n_rows, 4 * _sm_count(device.index or 0)))
    return max(1, min(n_rows, 4))


def check_float(name: str, t: torch.Tensor) -> None:
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32, float16 or bfloat16, got {t.dtype}")


def check_same_device(**tensors: torch.Tensor | None) -> None:
    devices = {n: t.device for n, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        raise ValueError(f"tensors on different devices: {devices}")


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """View `x` as [rows, last_dim], contiguous (copies only when it has to)."""
    x = x.reshape(-1, x.shape[-1])
    return x if x.stride(-1) == 1 and (x.shape[0] <= 1 or x.stride(0) == x.shape[1]) else x.contiguous()


def autotune_cache_kwargs() -> dict[str, bool]:
    """`triton.autotune` keywords that keep tuning results on disk across runs, where Triton can.

    Triton (3.3 and later) stores them in its cache folder keyed by its own version, the GPU target,
    the kernel's source, the tuning key (shapes, dtypes) and the configs, so a later run on the same
    machine skips the benchmarking that makes a first step slow; older Triton tunes every run.
    """
    import inspect

    from triton.runtime.autotuner import Autotuner

    return (
        {"cache_results": True} if "cache_results" in inspect.signature(Autotuner.__init__).parameters else {}
    )
