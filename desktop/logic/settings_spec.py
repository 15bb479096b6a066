"""Which of the run's settings the Train tab's form shows, and where the others are edited.

Every setting is declared once, with its label, help, range and choices, on the core config
(`tunesmith.core.config`); this module only sorts them for the app.  The form shows every setting that
is not internal, except the few with a widget of their own elsewhere in the window (`ELSEWHERE`).  A
widget that edits a setting carries the setting's dotted path as its object name, which is how a test
checks that none is missing.  Pure data, no Qt.
"""

from __future__ import annotations

import textwrap

from tunesmith.core.config import Setting, get_value, run_settings, set_value

# Settings edited outside the form, by the widget that owns the choice.
ELSEWHERE = {
    "model.source": "the model panel",
    "model.precision": "the model panel",
    "data.path": "the Dataset tab",
    "data.format": "the Dataset tab",
    "train.method": "the Train tab's method picker",
    "output_dir": "the run folder row of the Train tab",
}

SETTINGS: tuple[Setting, ...] = tuple(
    spec for spec in run_settings() if not spec.internal and spec.path not in ELSEWHERE
)
LABELS = {spec.path: spec.label for spec in run_settings()}
_BY_PATH = {spec.path: spec for spec in run_settings()}


def setting(path: str) -> Setting:
    """The declaration of one setting, by its dotted path."""
    return _BY_PATH[path]


def tooltip(spec: Setting) -> str:
    """The setting's help, wrapped for a tooltip (Qt does not wrap plain-text tooltips)."""
    return textwrap.fill(spec.help, 80)


__all__ = ["ELSEWHERE", "LABELS", "SETTINGS", "get_value", "set_value", "setting", "tooltip"]
