"""Give back the memory of models nobody holds any more, before the next big one loads.

Dropping the last reference to a model is not enough on its own: a trainer, its optimizer and the
model point at each other (callbacks, hooks), so they wait for Python's cycle collector; and the CUDA
caching allocator keeps freed blocks reserved for this process, where the next model's loader — or
another program — cannot have them.  A desktop session that trains twice, or chats after training,
calls `free_memory()` once it has let go of the old model, so an 8B model on a 12 GB card does not have
to fit twice.  Imports nothing heavy: CUDA's cache is emptied only if torch is loaded already.
"""

from __future__ import annotations

import gc
import sys


def free_memory() -> None:
    """Collect unreachable objects (cycles included) and return cached CUDA blocks to the driver."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        # No synchronize: another thread may be training, and empty_cache only returns unused blocks.
        torch.cuda.empty_cache()
