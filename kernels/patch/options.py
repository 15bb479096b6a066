"""ComparisonOptions: switches that turn off one of patch_model's optimisations, for the benchmarks and
tests that measure or check it against the plain computation.  The values are the same either way;
production code never passes them (hence the private `_comparison` keyword of patch_model)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComparisonOptions:
    """Defaults are what patch_model does in production; kernels/DESIGN.md explains each optimisation.

    lean_recompute: False recomputes a checkpointed layer in full (down projection included, every
    weight dequantized again in the backward).
    inplace_rope: False rotates q and k into new tensors instead of where the fused projection made them.
    stash_attention: False calls the model's own attention function, computed again in the recompute,
    instead of keeping each layer's attention output for it.
    stash_budget_gib: a cap on the stash's pinned host memory per forward pass (None: a quarter of this
    machine's RAM, within the host budget); layers past it are recomputed as without the stash.
    """

    lean_recompute: bool = True
    inplace_rope: bool = True
    stash_attention: bool = True
    stash_budget_gib: float | None = None
