"""Reading the checkpoints of a run folder: which are complete, and which one a resume takes.

A checkpoint folder `checkpoints/checkpoint-N` is complete when its marker lists every file with its
size and the files still have those sizes (`core.training.checkpoints` writes them that way).  Plain
file reading, no transformers, so the app can tell at start-up whether a run can be resumed without
loading the training libraries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MARKER = "tunesmith-complete.json"
STAGING = ".incomplete"
PREFIX = "checkpoint-"
KEEP = 2


@dataclass(frozen=True)
class Skipped:
    """A checkpoint folder resume passed over, and why (in words for the log)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name} is unusable ({self.reason}); skipping it"


def step_of(path: Path) -> int:
    return int(path.name[len(PREFIX) :])


def checkpoint_folders(folder: Path) -> list[Path]:
    """Folders named checkpoint-N (complete or not), newest step first; staging folders never count."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdecimal()]
    found = [p for p in found if p.is_dir()]
    return sorted(found, key=step_of, reverse=True)


def problem_with(path: Path) -> str | None:
    """Why this checkpoint cannot be trusted, or None when it is complete."""
    try:
        manifest = json.loads((path / MARKER).read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except FileNotFoundError:
        return "no completeness marker: it was still being written when the run stopped"
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {MARKER} is unreadable"
    for name, size in sorted(files.items()):
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        actual = file.stat().st_size
        if actual != size:
            return f"{name} is truncated or damaged ({actual:,} bytes, {size:,} expected)"
    return None


def latest_complete(folder: Path) -> Path | None:
    return choose_resume(folder)[0]


def choose_resume(folder: Path) -> tuple[Path | None, list[Skipped]]:
    """The newest complete checkpoint in `folder`, and the newer ones skipped on the way to it."""
    skipped: list[Skipped] = []
    for path in checkpoint_folders(folder):
        reason = problem_with(path)
        if reason is None:
            return path, skipped
        skipped.append(Skipped(path, reason))
    return None, skipped
