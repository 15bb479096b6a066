"""Before step 1: do the run's longest batches fit the host-memory budget the kernels were given?

The kernels (patch_model) keep every checkpointed layer's input in pinned host memory, within one budget
(kernels.memory.host_budget: the memory available at the start less headroom for the desktop); inputs that do
not fit stay in VRAM.  A batch of `batch_size x max_length` tokens that fits neither is refused here, in
words, with the longest length that would fit, instead of failing mid-step or freezing the desktop.
Knows the kernels' report and torch; not Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from tunesmith.kernels.patch import PatchReport


def host_memory_problem(
    model: nn.Module,
    report: PatchReport | None,
    batch_size: int,
    max_length: int,
    element_size: int = 2,
    free_vram: int | None = -1,
) -> str | None:
    """A message when `batch_size x max_length` tokens cannot run with the kernels' host budget.
    element_size: bytes per activation (the run's compute dtype: core.models.precision.ComputeDtype).
    free_vram: bytes free on the GPU (-1: ask CUDA; None: no GPU limit, as on the CPU)."""
    budget = getattr(report, "host_budget", None)
    if budget is None or not getattr(report, "patched", False):
        return None
    import torch

    from tunesmith.kernels.memory.host_budget import GIB, longest_tokens, plan_host_memory

    config = getattr(model, "config", None)
    n_layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    if not n_layers or not hidden:
        return None
    if free_vram == -1:
        free_vram = torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
    # what is left of the budget once the embedding table took its share (patch_model did that)
    available = budget.available
    tokens = batch_size * max_length
    fits, plan = plan_host_memory(n_layers, hidden, tokens, available, free_vram, element_size)
    if fits:
        return None
    longest = longest_tokens(n_layers, hidden, available, free_vram, element_size, step=256) // batch_size
    return (
        f"Batches of {batch_size} x {max_length} tokens need {plan.input_bytes * n_layers / GIB:.1f} GiB for "
        f"the layers' saved inputs, but only {available / GIB:.1f} GiB of host memory can be spared "
        f"(with headroom for the desktop) and the GPU has {(free_vram or 0) / GIB:.1f} GiB free. "
        f"The longest max length that fits at batch size {batch_size} is about {longest} tokens: "
        "lower the max length or the batch size, or close other programs to free memory."
    )
