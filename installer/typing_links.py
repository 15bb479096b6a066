"""Lays out the sources as `tunesmith/...` in the git-ignored folder `.typing/`, for static tools.

The editable install maps the top-level folders core/, kernels/, desktop/ and resources/ to
`tunesmith.*` through an import hook that type checkers and editors do not run.  `.typing/tunesmith/`
holds one directory symlink per folder (a copy on systems without symlinks), so mypy (`mypy_path` in
pyproject.toml) and pyright/Pylance (`extraPaths`) resolve every `tunesmith.*` import to the real
files; new files are seen without running this again.  Running it twice changes nothing.

    python installer/typing_links.py        (stdlib only; installer/setup_env.sh --test runs it)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("core", "kernels", "desktop", "resources")


def make_typing_links(root: Path = ROOT) -> Path:
    """Creates or repairs `root/.typing/tunesmith/<folder>` links; returns the `.typing` folder."""
    typing_dir = root / ".typing"
    package = typing_dir / "tunesmith"
    package.mkdir(parents=True, exist_ok=True)
    for name in TOP_LEVEL:
        _link(package / name, root / name)
    return typing_dir


def _link(link: Path, target: Path) -> None:
    relative = os.path.relpath(target, link.parent)  # survives moving the checkout
    if link.is_symlink() and os.readlink(link) == relative:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    try:
        link.symlink_to(relative, target_is_directory=True)
    except OSError:  # Windows without the symlink privilege: a copy, refreshed on each run.
        shutil.copytree(target, link, ignore=shutil.ignore_patterns("__pycache__"))


if __name__ == "__main__":
    print(make_typing_links(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT))
