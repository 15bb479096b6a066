"""Every setting a user may change has a widget in the window, and the form keeps what it is given.

Widgets carry their setting's dotted path as their object name; the list of settings comes from the
config's declarations, so a setting added to the config without a widget fails here.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from tunesmith.core.config import RunConfig, get_value, run_settings, set_value
from tunesmith.desktop.logic.settings_spec import SETTINGS
from tunesmith.desktop.widgets.settings_form import SettingsForm


def test_every_public_setting_has_a_widget_in_the_window(window):
    missing = [
        spec.path
        for spec in run_settings()
        if not spec.internal and window.findChild(QWidget, spec.path) is None
    ]
    assert missing == []


def changed(spec, value):
    """Another valid value for a form field."""
    if spec.kind == "bool":
        return not value
    if spec.kind == "choice":
        return next(choice for choice in spec.choices if choice != value)
    if spec.kind == "list":
        return ["q_proj", "v_proj"] if value != ["q_proj", "v_proj"] else ["o_proj"]
    if spec.kind == "text":
        return "/data/elsewhere.py"
    if spec.kind == "int":
        return value + 1 if spec.maximum is None or value + 1 <= spec.maximum else value - 1
    return round((value + (spec.maximum if spec.maximum is not None else value + 2)) / 2, spec.decimals)


def test_the_form_round_trips_every_field_it_shows(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    edited = RunConfig()
    for spec in SETTINGS:
        set_value(edited, spec.path, changed(spec, get_value(edited, spec.path)))
    edited.validate()
    form.load(edited)
    stored = RunConfig()
    for spec in SETTINGS:
        form.store(stored, spec.path)
    assert stored == edited
