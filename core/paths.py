"""Where Tunesmith keeps its own files: the model cache and new run folders.

Nothing here touches the user's data.  The cache folder can be moved with TUNESMITH_CACHE (tests point
it at a shared temporary folder so the embedded model is converted once per test session).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path


def cache_dir() -> Path:
    """The folder for converted models and other rebuildable files."""
    override = os.environ.get("TUNESMITH_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tunesmith"


def new_run_dir(output_dir: str | Path, name: str | None = None) -> Path:
    """Create and return a fresh run folder inside output_dir; an existing folder is never reused."""
    root = Path(output_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S")
    if name:
        stem = f"{_slug(name)}-{stem}"
    for suffix in range(1000):
        candidate = root / (stem if suffix == 0 else f"{stem}-{suffix}")
        try:
            candidate.mkdir()  # atomic: fails if another run took the name first
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder in {root}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"
