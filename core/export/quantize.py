"""K-quants (Q4_K_M, Q5_K_M, Q6_K) through llama.cpp's own quantizer, run in a child process.

gguf-py cannot produce K-quants, so an F16 GGUF is written first and llama.cpp requantizes it
(tensors whose rows do not split into 256-wide blocks fall back to other types by llama.cpp's
rules).  The quantizer runs in a llama.cpp child (`core/native/llama_quantize.py`): if it crashes,
the half-written output is removed and the error says so.  Knows which llama.cpp file types exist;
nothing about models.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tunesmith.core.native import NativeCrash, NativeHost, llama_cpp_installed
from tunesmith.core.native.crash import REINSTALL

from .result import ExportError

log = logging.getLogger(__name__)

K_QUANTS = {
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
}
QUANTIZE = "tunesmith.core.native.llama_quantize:quantize"
QUANT_ADVICE = (
    f"export as Q8_0 or F16 (Tunesmith writes those itself, without llama.cpp's quantizer), or {REINSTALL}."
)


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python is installed (it is never loaded into this process)."""
    return llama_cpp_installed()


def require_llama_cpp(what: str) -> None:
    if not llama_cpp_available():
        raise ExportError(
            f"{what} needs llama-cpp-python, which is not installed. Install it with "
            "`pip install 'tunesmith[chat]'` (it compiles llama.cpp, a few minutes)."
        )


def quantize_gguf(src: Path, dst: Path, quant: str) -> Path:
    """Requantize the F16/F32 GGUF `src` to `quant` at `dst` with llama.cpp (in a child process)."""
    if quant not in K_QUANTS:
        raise ExportError(f"llama.cpp quantization supports {', '.join(K_QUANTS)}, not {quant!r}")
    require_llama_cpp(f"{quant.upper()} export")
    src, dst = Path(src).absolute(), Path(dst).absolute()
    try:
        with NativeHost(f"quantizing {src.name} to {quant.upper()}", QUANT_ADVICE) as host:
            code = host.run(QUANTIZE, src, dst, K_QUANTS[quant])
    except NativeCrash as crash:
        dst.unlink(missing_ok=True)
        raise ExportError(
            f"{crash}\nNo {quant.upper()} file was kept: the half-written one was removed."
        ) from crash
    if code != 0 or not dst.is_file():
        dst.unlink(missing_ok=True)
        raise ExportError(f"llama.cpp could not quantize {src.name} to {quant.upper()} (code {code})")
    log.info("quantized %s -> %s (%s)", src.name, dst.name, quant.upper())
    return dst
