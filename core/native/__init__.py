"""Native code in its own process: every use of llama.cpp in Tunesmith runs in a child process.

llama.cpp is C++; when it crashes (a CPU instruction it was wrongly built for, a fault in a
quantized matmul) it kills the process it runs in.  So the app and the CLI never load it: chat,
the GGUF check and K-quant quantizing send requests to a child (`client.NativeHost`), and a dead
child becomes a `NativeCrash` with words, the signal and the child's log.

- `protocol`: length-prefixed pickled messages on the child's stdin/stdout;
- `host`: the child's entry point (`python -m tunesmith.core.native.host`);
- `client`: `NativeHost`, which starts the child, calls it, and notices its death;
- `crash`: `NativeCrash` and the words for exit signals and codes;
- `llama_chat`, `llama_check`, `llama_quantize`: the child side — the only modules that import
  `llama_cpp`.
Importing this package imports neither llama_cpp nor torch.
"""

from __future__ import annotations

import importlib.util

from .client import NativeHost
from .crash import NativeCrash

__all__ = ["NativeCrash", "NativeHost", "llama_cpp_installed"]


def llama_cpp_installed() -> bool:
    """Whether llama-cpp-python is installed, found without loading it into this process."""
    return importlib.util.find_spec("llama_cpp") is not None
