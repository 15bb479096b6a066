"""K-quants (Q4_K_M, Q5_K_M, Q6_K) through llama.cpp's own quantizer, as llama-cpp-python exposes it.

gguf-py cannot produce K-quants, so an F16 GGUF is written first and llama.cpp requantizes it
(tensors whose rows do not split into 256-wide blocks fall back to other types by llama.cpp's
rules).  Knows the llama_cpp C API; nothing about models.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

from .result import ExportError

log = logging.getLogger(__name__)

K_QUANTS = {
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
}


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def require_llama_cpp(what: str) -> None:
    if not llama_cpp_available():
        raise ExportError(
            f"{what} needs llama-cpp-python, which is not installed. Install it with "
            "`pip install 'tunesmith[chat]'` (it compiles llama.cpp, a few minutes)."
        )


def quantize_gguf(src: Path, dst: Path, quant: str) -> Path:
    """Requantize the F16/F32 GGUF `src` to `quant` at `dst` with llama.cpp."""
    if quant not in K_QUANTS:
        raise ExportError(f"llama.cpp quantization supports {', '.join(K_QUANTS)}, not {quant!r}")
    require_llama_cpp(f"{quant.upper()} export")
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, K_QUANTS[quant])
    params.nthread = max(1, (os.cpu_count() or 1))
    from llama_cpp._utils import suppress_stdout_stderr

    # llama.cpp prints a line per tensor (and per fallback type) straight to the C streams.
    with suppress_stdout_stderr(disable=log.isEnabledFor(logging.DEBUG)):
        code = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if code != 0 or not Path(dst).is_file():
        raise ExportError(f"llama.cpp could not quantize {src.name} to {quant.upper()} (code {code})")
    log.info("quantized %s -> %s (%s)", src.name, dst.name, quant.upper())
    return Path(dst)
