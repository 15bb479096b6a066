"""Export the LoRA adapter as a peft folder (safetensors) that `PeftModel.from_pretrained` loads.

The run already holds the adapter as peft saved it; export copies it with its tokenizer files, after
checking that peft can read its config, so a broken run fails here rather than at the user's side.
Knows peft's file names; knows nothing about merging or GGUF.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .result import ExportError, ProgressFn, report
from .runs import RunInfo, commit_output, reserve_output

log = logging.getLogger(__name__)


def export_lora(
    run: RunInfo, output: Path, overwrite: bool = False, on_progress: ProgressFn | None = None
) -> Path:
    """Copy the run's adapter to `output` (a folder) and return it."""
    from peft import PeftConfig

    src = run.adapter_dir
    weights = [p for p in src.glob("adapter_model.*") if p.suffix in (".safetensors", ".bin")]
    if not weights:
        raise ExportError(f"{src} has adapter_config.json but no adapter_model.safetensors")
    try:
        PeftConfig.from_pretrained(str(src))
    except Exception as exc:
        raise ExportError(f"{src}/adapter_config.json cannot be read by peft: {exc}") from exc
    tmp = reserve_output(output, overwrite)
    report(on_progress, 0.1, "copying the adapter")
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("checkpoint-*", "*.partial"))
    report(on_progress, 1.0, "adapter written")
    return commit_output(tmp, output)
