"""One entry point for every export, used alike by the app, the CLI and the tests.

`export_run(run_dir, fmt, quant)` checks everything it can before any heavy work (run folder, format,
architecture, output name, llama-cpp-python when needed), writes to a temporary name, runs the GGUF
check, and only then renames into place.  Formats: "lora" (peft folder), "merged" (16-bit HF
folder), "gguf" (merged model in one GGUF type, plus an Ollama Modelfile), "gguf-lora" (the adapter as
GGUF for llama.cpp / Ollama to apply to the base GGUF, plus a Modelfile).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .result import EXPORT_FORMATS, GGUF_QUANTS, ExportError, ExportResult, ProgressFn, report
from .runs import RunInfo, commit_output, default_name, open_run, reserve_output

log = logging.getLogger(__name__)


def export_run(
    run_dir: str | os.PathLike[str],
    fmt: str,
    quant: str | None = None,
    output: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    on_progress: ProgressFn | None = None,
    check: bool = True,
    system_prompt: str | None = None,
) -> ExportResult:
    """Export a finished run; raises ExportError with a plain message on any problem (or failed check)."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "gguf":
        quant = (quant or "f16").lower()
        if quant not in GGUF_QUANTS:
            raise ExportError(f"unknown GGUF type {quant!r}; choose one of {', '.join(GGUF_QUANTS)}")
    elif quant is not None and not (fmt == "merged" and quant in ("bf16", "f16", "fp16")):
        raise ExportError(f"--quant applies to GGUF exports (and bf16/f16 for merged), not to {fmt}")
    run = open_run(run_dir)
    start = time.monotonic()
    if fmt == "lora":
        from .lora import export_lora

        out = _output(run, output, "-lora")
        result = ExportResult(fmt, export_lora(run, out, overwrite, on_progress))
    elif fmt == "merged":
        from .merged import export_merged

        out = _output(run, output, "-merged")
        dtype = "fp16" if quant in ("f16", "fp16") else "bf16"
        result = ExportResult(fmt, export_merged(run, out, dtype, overwrite, on_progress), quant=dtype)
    elif fmt == "gguf":
        from .gguf_export import export_gguf

        gguf_type = quant or "f16"  # set above for every GGUF export
        out = _output(run, output, f"-{gguf_type}.gguf")
        result = export_gguf(run, out, gguf_type, overwrite, on_progress, check, system_prompt)
    else:
        from .gguf_export import export_lora_gguf

        out = _output(run, output, "-lora.gguf")
        result = export_lora_gguf(run, out, overwrite, on_progress, check, system_prompt)
    result.seconds = time.monotonic() - start
    report(on_progress, 1.0, "done")
    log.info("%s", result.summary())
    return result


def _output(run: RunInfo, output: str | os.PathLike[str] | None, suffix: str) -> Path:
    if output is None:
        return default_name(run, suffix)
    path = Path(output).expanduser()
    if suffix.endswith(".gguf") and path.suffix.lower() != ".gguf":
        raise ExportError(f"{path}: a GGUF output must end in .gguf")
    return path


__all__ = ["ExportError", "ExportResult", "commit_output", "export_run", "reserve_output"]
