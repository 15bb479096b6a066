"""Which of the run's settings the Train tab's form shows, and where the others are edited.

Every setting is declared once, with its label, help, range and choices, on the core config
(`tunesmith.core.config`); this module only sorts them for the app.  The form shows every setting that
is not internal, except the few with a widget of their own elsewhere in the window (`ELSEWHERE`).  A
widget that edits a setting carries the setting's dotted path as its object name, which is how a test
checks that none is missing.  Pure data, no Qt.
"""

from __future__ import annotations

import textwrap

from tunesmith.core.config import Setting, get_value, run_settings, set_value, setting_at
from tunesmith.core.settings import plain_number

# Settings edited outside the form, by the widget that owns the choice.
ELSEWHERE = {
    "model.source": "the model panel",
    "model.precision": "the model panel",
    "data.path": "the Dataset tab",
    "data.format": "the Dataset tab",
    "data.columns": "the Dataset tab's column step",
    "train.method": "the Train tab's method picker",
    "output_dir": "the run folder row of the Train tab",
}

SETTINGS: tuple[Setting, ...] = tuple(
    spec for spec in run_settings() if not spec.internal and spec.path not in ELSEWHERE
)
LABELS = {spec.path: spec.label for spec in run_settings()}


def typed_note(spec: Setting, typed: float | None, kept: float) -> str:
    """What to tell someone about a number they typed in a field: why it was refused (outside the
    allowed range: the field kept `kept`), that it is far from the usual, or nothing."""
    if typed is None:
        return ""
    low, high = spec.minimum, spec.maximum
    if (low is not None and typed < low) or (high is not None and typed > high):
        usual = f" (usually {spec.usual_range()})" if spec.usual else ""
        return (
            f"{plain_number(typed)} is not allowed: {spec.label} must be {spec.allowed()}{usual}. "
            f"It stays {plain_number(kept)}."
        )
    if spec.usual and not spec.usual[0] <= typed <= spec.usual[1]:
        return (
            f"{plain_number(typed)} is far from the usual {spec.usual_range()}: you will be asked to confirm "
            "it before training starts."
        )
    return ""


def tooltip(spec: Setting) -> str:
    """The setting's help, wrapped for a tooltip (Qt does not wrap plain-text tooltips)."""
    return textwrap.fill(spec.help, 80)


__all__ = ["ELSEWHERE", "LABELS", "SETTINGS", "get_value", "set_value", "setting_at", "tooltip", "typed_note"]
