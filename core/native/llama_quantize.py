"""The child side of K-quant exports: llama.cpp's own quantizer, as llama-cpp-python exposes it.

Runs only in the child process (`core/export/quantize.py` asks for it through `NativeHost`), so a
crash inside llama.cpp's quantizer ends the child, not the export's process.  Knows the llama_cpp C
API; nothing about models.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

import llama_cpp

log = logging.getLogger(__name__)


def quantize(src: Path, dst: Path, ftype_name: str) -> int:
    """Requantize `src` to `dst` as `ftype_name` (e.g. "LLAMA_FTYPE_MOSTLY_Q4_K_M"); llama.cpp's code."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype_name)
    params.nthread = max(1, os.cpu_count() or 1)
    # llama.cpp prints a line per tensor to the C streams: here they are the child's log file.
    code = int(llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)))
    log.info("quantized %s -> %s as %s: code %d", Path(src).name, Path(dst).name, ftype_name, code)
    return code
