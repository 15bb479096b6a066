"""Where Tunesmith keeps the user's things and its own, per platform, in one place.

Nothing here touches the user's data (datasets are only read elsewhere).

- `user_dir()`: the folder a user sees and owns (runs, exports): `~/Tunesmith` on Linux and macOS,
  `Documents\\Tunesmith` on Windows. The app puts runs in `user_dir()/runs` by default; the CLI keeps
  its documented `--output runs` (relative to the current folder).
- `app_data_dir()`: Tunesmith's own state (logs): `$XDG_DATA_HOME/tunesmith`
  (`~/.local/share/tunesmith`) on Linux, `%LOCALAPPDATA%\\Tunesmith` on Windows,
  `~/Library/Application Support/Tunesmith` on macOS.
- `cache_dir()`: converted models and other rebuildable files (`TUNESMITH_CACHE` moves it; tests
  point it at a shared temporary folder so the embedded model is converted once per test session).
- `new_run_dir()`: a fresh run folder, never reused.
- `sync_folder()`: makes a rename into a folder durable (the last step of an atomic write).
`TUNESMITH_HOME` moves the first two (user things under it, app data under `TUNESMITH_HOME/.app`): tests and
portable installs use it. Knows the platform; nothing about training or Qt.
"""

from __future__ import annotations

import os
import re
import sys
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


def _home_override() -> Path | None:
    value = os.environ.get("TUNESMITH_HOME")
    return Path(value).expanduser() if value else None


def user_dir() -> Path:
    """The user's Tunesmith folder (not created here)."""
    override = _home_override()
    if override is not None:
        return override
    if sys.platform == "win32":
        documents = Path(os.environ.get("USERPROFILE") or Path.home()) / "Documents"
        return documents / "Tunesmith"
    return Path.home() / "Tunesmith"


def default_runs_dir() -> Path:
    """Where the app writes runs unless the user chose another folder."""
    return user_dir() / "runs"


def app_data_dir() -> Path:
    """Tunesmith's own per-user state (not created here)."""
    override = _home_override()
    if override is not None:
        return override / ".app"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "Tunesmith"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Tunesmith"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tunesmith"


def log_dir() -> Path:
    """Where the app and its child processes write their logs (created)."""
    path = app_data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sync_folder(folder: str | Path) -> None:
    """Make a rename into `folder` durable (POSIX); Windows cannot open folders, and needs no such step."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
