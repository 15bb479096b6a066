"""What the app remembers between launches, through QSettings: the run configuration (so the last model
and dataset return), the folder runs are saved in, window geometry, splitter sizes, the open tab, the
chat settings, and whether the first-start welcome was dismissed.

Settings live in an INI file under the user's config folder ("Tunesmith/Tunesmith.ini"); tests point
QSettings at a temporary folder with `QSettings.setPath`.  Knows nothing about the engine beyond
RunConfig's dict round trip.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QSplitter, QWidget

from tunesmith.core.config import RunConfig
from tunesmith.core.paths import default_runs_dir
from tunesmith.desktop.theme import APPLICATION, ORGANIZATION

log = logging.getLogger(__name__)


def make_settings() -> QSettings:
    """The app's settings store (INI format, user scope)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def save_config(settings: QSettings, config: RunConfig) -> None:
    """Remember the whole run configuration."""
    settings.setValue("run/config", json.dumps(config.to_dict()))


def load_config(settings: QSettings) -> RunConfig | None:
    """The remembered configuration, or None (first launch, or a config from an incompatible version)."""
    text = settings.value("run/config")
    if not text:
        return None
    try:
        return RunConfig.from_dict(json.loads(str(text)))
    except Exception as exc:  # noqa: BLE001 - a stale setting must never stop the app from opening
        log.warning("ignoring remembered settings: %s", exc)
        return None


def save_splitters(settings: QSettings, root: QWidget) -> None:
    """Remember every named splitter's sizes under `root`."""
    for splitter in root.findChildren(QSplitter):
        if splitter.objectName():
            settings.setValue(f"layout/{splitter.objectName()}", splitter.saveState())


def restore_splitters(settings: QSettings, root: QWidget) -> None:
    """Restore splitter sizes saved by `save_splitters`."""
    for splitter in root.findChildren(QSplitter):
        state = settings.value(f"layout/{splitter.objectName()}") if splitter.objectName() else None
        if state is not None:
            splitter.restoreState(state)


def save_values(settings: QSettings, group: str, values: dict[str, Any]) -> None:
    """Remember a dict of plain values (JSON) under a name."""
    settings.setValue(group, json.dumps(values))


def load_values(settings: QSettings, group: str) -> dict[str, Any]:
    """A dict saved by `save_values`, or {}."""
    try:
        return dict(json.loads(str(settings.value(group) or "{}")))
    except (ValueError, TypeError):
        return {}


WELCOME_KEY = "welcome/seen"


def welcome_seen(settings: QSettings) -> bool:
    """True once the user pressed "Got it" on the first-start welcome."""
    return str(settings.value(WELCOME_KEY, "false")).lower() == "true"


def set_welcome_seen(settings: QSettings, seen: bool = True) -> None:
    """Remember (now, not at quit) that the welcome was dismissed, so a crash does not bring it back."""
    settings.setValue(WELCOME_KEY, seen)
    settings.sync()


RUNS_KEY = "run/output_dir"


def runs_dir(settings: QSettings) -> Path:
    """The folder the app creates runs in: the user's choice, else `~/Tunesmith/runs` (or the platform's
    equivalent) — never the working folder, which for a desktop launch may be `/` or Program Files."""
    value = settings.value(RUNS_KEY)
    return Path(str(value)) if value else default_runs_dir()


def set_runs_dir(settings: QSettings, folder: str | Path) -> None:
    """Remember (now, not at quit) the folder new runs go in."""
    settings.setValue(RUNS_KEY, str(folder))
    settings.sync()


DECLINED_KEY = "run/declined_resumes"


def declined_runs(settings: QSettings) -> set[str]:
    """Run folders whose resume offer the user turned down (Discard): not offered again."""
    try:
        return set(json.loads(str(settings.value(DECLINED_KEY) or "[]")))
    except (ValueError, TypeError):
        return set()


def decline_run(settings: QSettings, run_dir: str | Path) -> None:
    """Stop offering to resume `run_dir` (its folder stays on disk)."""
    settings.setValue(DECLINED_KEY, json.dumps(sorted(declined_runs(settings) | {str(run_dir)})))
    settings.sync()
