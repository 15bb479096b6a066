"""What step 1 does that later steps do not, in words, so the app and the CLI can say it while it runs.

A run's first step on a GPU can take many times longer than the rest (BENCHMARKS.md: 7.4 s against 0.33 s
for 8B QLoRA at 2x2048; 42 s against 7.3 s for issue 15's GRPO step) and shows no progress until it ends.  What it
spends that time on is known before it starts: compiling Tunesmith's Triton kernels for the run's shapes
and tuning them (both kept on disk by Triton, so a later run with a warm cache skips most of it), page-
locking the host memory the offloaded layer inputs use, and for GRPO the first rollouts' sampler setup.
Qt-free and torch-free: the caller passes what it knows.
"""

from __future__ import annotations

import os
from pathlib import Path


def triton_cache_dir() -> Path:
    """Where Triton keeps compiled kernels and tuning results (TRITON_CACHE_DIR, else ~/.triton/cache)."""
    override = os.environ.get("TRITON_CACHE_DIR")
    return Path(override) if override else Path.home() / ".triton" / "cache"


def _has_entries(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:  # unreadable: say what a cold cache would
        return False


def first_step_words(
    device: str,
    kernels_patched: bool,
    pinned_limit_bytes: int | None = None,
    method: str = "sft",
    cache: Path | None = None,
) -> str:
    """One sentence for the status line between the start and step 1's end ("" where step 1 is like the
    rest: on the CPU).  `pinned_limit_bytes`: the kernels' host-memory budget, where they pin any."""
    if not device.startswith("cuda"):
        return ""
    doing = []
    if kernels_patched:
        cache = cache or triton_cache_dir()
        if _has_entries(cache):
            doing.append(
                f"loads Tunesmith's compiled GPU kernels from {cache} (shapes not seen before are compiled "
                "and tuned once, then kept there)"
            )
        else:
            doing.append(
                "compiles Tunesmith's GPU kernels for this model and tunes them (the first time on this "
                f"machine; they are kept in {cache}, so later runs start faster)"
            )
    else:
        doing.append("sets up CUDA's libraries and the model's GPU memory")
    if pinned_limit_bytes:
        doing.append(
            f"page-locks host memory for the layer inputs it moves off the GPU (at most "
            f"{pinned_limit_bytes / 2**30:.1f} GiB)"
        )
    if method == "grpo":
        doing.append("prepares the fast sampler for the first completions")
    listed = doing[0] if len(doing) == 1 else ", ".join(doing[:-1]) + " and " + doing[-1]
    return f"Step 1 takes longer than the rest: it {listed}."
