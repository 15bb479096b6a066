"""Read a finished run folder: its config, its LoRA adapter, and where its base model and tokenizer are.

A run folder holds `config.yaml` and `adapter/` (peft's save_pretrained output plus the tokenizer and
chat template).  This module checks that, with messages that say what is wrong, and resolves the base
model through `core.models.sources`.  It loads no weights; `merged.py` does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tunesmith.core.config import RunConfig

from .result import ExportError

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    run_dir: Path
    config: RunConfig
    adapter_dir: Path

    @property
    def exports_dir(self) -> Path:
        return self.run_dir / "exports"

    def base_model_dir(self) -> Path:
        from tunesmith.core.models.sources import ModelSourceError, resolve_dense_model_dir

        try:
            return Path(resolve_dense_model_dir(self.config.model.source))
        except ModelSourceError as exc:
            raise ExportError(f"the run's base model cannot be found: {exc}") from exc

    def source_gguf(self) -> Path | None:
        """The GGUF the base model came from (demo or a .gguf source): its tokenizer keys are the reference."""
        from tunesmith.core.models.sources import resolve_model_source

        try:
            found = resolve_model_source(self.config.model.source)
        except Exception:
            return None
        return Path(found.location) if found.kind in ("demo", "gguf") else None

    def tokenizer_dir(self) -> Path:
        """The adapter folder when the run saved its tokenizer there (it may carry a changed template)."""
        if (self.adapter_dir / "tokenizer.json").is_file():
            return self.adapter_dir
        return self.base_model_dir()

    def trained_precision(self) -> str | None:
        """The precision the weights were trained in ("4bit", "bf16", ...), from the run's records.

        The training engine logs it in the "started" event of metrics.jsonl (config.yaml only holds
        what was asked for, e.g. "auto").
        """
        metrics = self.run_dir / "metrics.jsonl"
        found = None
        if metrics.is_file():
            for line in metrics.read_text(encoding="utf-8").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if event.get("event") == "started" and event.get("precision"):
                    found = str(event["precision"])
        return found


def open_run(run_dir: str | os.PathLike[str]) -> RunInfo:
    """Check a run folder and return what export needs from it, or ExportError saying what is missing."""
    path = Path(run_dir).expanduser()
    if not path.exists():
        raise ExportError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise ExportError(f"{path} is a file; give the run folder (the one that holds config.yaml)")
    cfg_path = path / "config.yaml"
    if not cfg_path.is_file():
        raise ExportError(f"{path} has no config.yaml, so it is not a Tunesmith run folder")
    try:
        config = RunConfig.from_yaml(cfg_path)
    except Exception as exc:
        raise ExportError(f"{cfg_path} cannot be read: {exc}") from exc
    adapter = path / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise ExportError(
            f"{path} has no trained adapter (adapter/adapter_config.json): the run did not finish. "
            "Resume it or train again, then export."
        )
    return RunInfo(path.resolve(), config, adapter)


def reserve_output(path: Path, overwrite: bool) -> Path:
    """Refuse an existing output unless `overwrite`; return the temporary name to write first."""
    if path.exists() and not overwrite:
        raise ExportError(f"{path} already exists; choose another --output or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    _remove(tmp)
    return tmp


def commit_output(tmp: Path, path: Path) -> Path:
    """Move a finished temporary output into place (replacing the old one only when asked earlier)."""
    if path.exists():
        _remove(path)
    os.replace(tmp, path)
    return path


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def default_name(run: RunInfo, suffix: str) -> Path:
    """A new name under RUN_DIR/exports that no earlier export used."""
    stem = run.run_dir.name
    candidate = run.exports_dir / f"{stem}{suffix}"
    n = 2
    while candidate.exists():
        candidate = run.exports_dir / f"{stem}-{n}{suffix}"
        n += 1
    return candidate
