"""The heavy libraries (torch, transformers, peft, datasets, trl), imported once, in one place.

Why this exists: transformers (and trl) resolve their public names lazily, importing a submodule the
first time a name is asked for.  When two threads do that for the first time at once, each can hold
one module's import lock while waiting for the other's; Python breaks such a cycle by handing one
thread a half-initialised module, and the user reads "cannot import name 'AutoModelForCausalLM' from
'transformers'".  It happens only on a program's first imports, which is exactly when the app starts
its background probes (hardware, dataset preview, memory estimate) together.

So a program that runs engine work on several threads calls `import_heavy()` at the start of each
such job: the first caller imports every library and resolves the names the engine uses, under one
lock; the others wait for it and then find finished modules.  A failure is re-raised to every caller
(each job reports it in its own words) and the next call tries again.  Single-threaded programs (the
CLI) need not call it.  Knows nothing of Qt or of what the jobs do.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time

log = logging.getLogger(__name__)

# (module, names the engine takes from it): resolving a name imports the submodule that defines it.
HEAVY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("torch", ()),
    (
        "transformers",
        (
            "AutoConfig",
            "AutoModelForCausalLM",
            "AutoTokenizer",
            "PreTrainedModel",
            "PreTrainedTokenizerBase",
            "StoppingCriteria",
            "TextIteratorStreamer",
            "TrainerCallback",
            "set_seed",
        ),
    ),
    ("datasets", ("Dataset",)),
    ("peft", ("LoraConfig", "PeftModel", "get_peft_model")),
    ("trl", ("SFTConfig", "SFTTrainer")),
)

_lock = threading.Lock()
_ready = threading.Event()


def import_heavy() -> None:
    """Import the heavy libraries unless done already; blocks while another thread is doing it."""
    if _ready.is_set():
        return
    with _lock:
        if _ready.is_set():
            return
        began = time.perf_counter()
        for module_name, names in HEAVY:
            module = importlib.import_module(module_name)
            for name in names:
                getattr(module, name)
        _ready.set()
        log.info("heavy libraries imported in %.1f s", time.perf_counter() - began)


def heavy_ready() -> bool:
    """True once `import_heavy()` has finished (for a "still loading" line; never needed to be safe)."""
    return _ready.is_set()
