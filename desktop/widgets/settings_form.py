"""A form of training settings built from their declarations on the core config
(`settings_spec.SETTINGS`): basic ones always visible, the rest in a collapsible Advanced section.
Every field carries its plain-words tooltip; fields this machine cannot use are disabled with the
reason shown; fields of other training methods (DPO's beta, GRPO's rewards, ...) are hidden until
their method is chosen.  Each editor's object name is its setting's dotted path.

Reads from and writes to a RunConfig through dotted paths; knows nothing about running anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tunesmith.core.config import Setting
from tunesmith.desktop.logic.settings_spec import SETTINGS, get_value, set_value, tooltip, typed_note
from tunesmith.desktop.widgets.number_fields import (
    CheckedDoubleSpinBox,
    CheckedSpinBox,
    NumberField,
    ScientificSpinBox,
)

# Spin-box bounds for settings declared without one (Qt needs a finite range).
_INT_LIMIT = 2**31 - 1
_FLOAT_LIMIT = 1e9
# A combo box's data for the "automatic" (None) choice: Qt's item data cannot tell None from "no data".
_NONE = ""
GPUS = "train.gpus"  # shown only on machines with several GPUs (show_gpu_choice)


class SettingsForm(QWidget):
    """sig_changed(path) is emitted when the user edits a field (not when the form is loaded)."""

    sig_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.editors: dict[str, QWidget] = {}
        # Under each number field: why a typed number was refused, or that it is far from the usual.
        self.notes: dict[str, QLabel] = {}
        self.specs: dict[str, Setting] = {spec.path: spec for spec in SETTINGS}
        self._fields: dict[str, QWidget] = {}  # the editor with its note: one row of the form
        self._typed: dict[str, str] = {}  # what was last typed in a number field, before Qt's correction
        self._layouts: dict[str, QFormLayout] = {}
        basic = QFormLayout()
        advanced_box = QWidget()
        advanced = QFormLayout(advanced_box)
        advanced.setContentsMargins(0, 0, 0, 0)
        for spec in SETTINGS:
            editor = self._make_editor(spec)
            self.editors[spec.path] = editor
            field = self._with_note(spec, editor)
            form = advanced if spec.advanced else basic
            form.addRow(spec.label + ":", field)
            form.labelForField(field).setToolTip(tooltip(spec))
            self._fields[spec.path] = field
            self._layouts[spec.path] = form
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setArrowType(self.advanced_toggle.arrowType().RightArrow)
        self.advanced_toggle.setToolButtonStyle(
            self.advanced_toggle.toolButtonStyle().ToolButtonTextBesideIcon
        )
        self.advanced_toggle.toggled.connect(self.set_advanced_visible)
        self.advanced_box = advanced_box
        advanced_box.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(basic)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(advanced_box)
        layout.addStretch(1)
        self._loading = False
        self.set_method("sft")
        self.show_gpu_choice(0)  # until the hardware is known

    def set_method(self, method: str) -> None:
        """Show the fields `method` uses; hide the other methods' own fields."""
        for path, spec in self.specs.items():
            if spec.methods:
                self._layouts[path].setRowVisible(self._fields[path], method in spec.methods)

    def show_gpu_choice(self, gpu_count: int) -> None:
        """The GPUs field only where there is a choice: more than one CUDA GPU (core's hardware count)."""
        self._layouts[GPUS].setRowVisible(self._fields[GPUS], gpu_count > 1)

    def shows(self, path: str) -> bool:
        """Whether a field's row is shown for the current method (the Advanced box aside)."""
        return not self._fields[path].isHidden()

    def _with_note(self, spec: Setting, editor: QWidget) -> QWidget:
        """The editor, and for a number a note below it (hidden until there is something to say)."""
        if not isinstance(editor, CheckedSpinBox | CheckedDoubleSpinBox):
            return editor
        field = QWidget()
        column = QVBoxLayout(field)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        note = QLabel()
        note.setObjectName("vramWarning")  # the app's red warning style
        note.setWordWrap(True)
        note.hide()
        column.addWidget(editor)
        column.addWidget(note)
        self.notes[spec.path] = note
        editor.lineEdit().textEdited.connect(lambda text: self._typed.__setitem__(spec.path, text))
        editor.editingFinished.connect(lambda: self._explain_typed(spec, editor))
        return field

    def _explain_typed(self, spec: Setting, editor: NumberField) -> None:
        """After editing: say why a typed number was not used (Qt put the last allowed one back), or
        that it is far from the usual; say nothing for an ordinary value."""
        typed = self._typed.pop(spec.path, None)
        if typed is None:
            return  # the arrows or a preset changed it: nothing was typed
        note = typed_note(spec, editor.typed_value(typed), editor.value())
        self.notes[spec.path].setText(note)
        self.notes[spec.path].setVisible(bool(note))

    def add_below(self, path: str, widget: QWidget) -> None:
        """Put `widget` on its own row under the field of `path` (the max length's "Longest that fits")."""
        form = self._layouts[path]
        row, _role = form.getWidgetPosition(self._fields[path])
        form.insertRow(row + 1, widget)

    def set_advanced_visible(self, visible: bool) -> None:
        """Open or close the Advanced section."""
        self.advanced_toggle.setChecked(visible)
        arrow = self.advanced_toggle.arrowType()
        self.advanced_toggle.setArrowType(arrow.DownArrow if visible else arrow.RightArrow)
        self.advanced_box.setVisible(visible)

    def load(self, config: Any) -> None:
        """Show the config's values (no sig_changed)."""
        self._loading = True
        try:
            for path, editor in self.editors.items():
                _set_editor(editor, self.specs[path], get_value(config, path))
        finally:
            self._loading = False

    def value(self, path: str) -> Any:
        """The value a field shows now."""
        return _editor_value(self.editors[path], self.specs[path])

    def store(self, config: Any, path: str) -> None:
        """Write one field into the config (the others keep their values, e.g. automatic ones)."""
        set_value(config, path, self.value(path))

    def apply_limits(self, limits: dict[str, str]) -> None:
        """Disable settings (and choices) this machine cannot use; the tooltip says why."""
        for path, editor in self.editors.items():
            spec = self.specs[path]
            reason = limits.get(path)
            editor.setEnabled(reason is None)
            editor.setToolTip(tooltip(spec) + (f"\n\nNot available here: {reason}" if reason else ""))
            if isinstance(editor, QComboBox):
                for row in range(editor.count()):
                    choice_reason = limits.get(f"{path}={editor.itemData(row)}")
                    item = editor.model().item(row)
                    item.setEnabled(choice_reason is None)
                    item.setToolTip(choice_reason or "")

    def _make_editor(self, spec: Setting) -> QWidget:
        emit: Callable[..., None] = lambda *_: None if self._loading else self.sig_changed.emit(spec.path)  # noqa: E731
        if spec.kind == "int":
            editor = CheckedSpinBox()
            low = -_INT_LIMIT if spec.minimum is None else int(spec.minimum)
            editor.setRange(low, _INT_LIMIT if spec.maximum is None else int(spec.maximum))
            editor.setSingleStep(int(spec.step))
            editor.setSpecialValueText(spec.minimum_means)
            editor.valueChanged.connect(emit)
        elif spec.kind == "float":
            editor = ScientificSpinBox() if spec.decimals > 4 else CheckedDoubleSpinBox()
            editor.setDecimals(spec.decimals)
            low = -_FLOAT_LIMIT if spec.minimum is None else spec.minimum
            editor.setRange(low, _FLOAT_LIMIT if spec.maximum is None else spec.maximum)
            editor.setSingleStep(spec.step)
            editor.setSpecialValueText(spec.minimum_means)
            editor.valueChanged.connect(emit)
        elif spec.kind == "choice":
            editor = QComboBox()
            for value, words in spec.choices.items():
                editor.addItem(words, _NONE if value is None else value)
            editor.currentIndexChanged.connect(emit)
        elif spec.kind in ("list", "text"):
            editor = QLineEdit()
            editor.setPlaceholderText(spec.placeholder)
            editor.editingFinished.connect(emit)
        else:
            editor = QCheckBox()
            editor.toggled.connect(emit)
        editor.setObjectName(spec.path)
        editor.setToolTip(tooltip(spec))
        return editor


def _set_editor(editor: QWidget, spec: Setting, value: Any) -> None:
    if isinstance(editor, QSpinBox | QDoubleSpinBox):
        editor.setValue(value)
    elif isinstance(editor, QComboBox):
        editor.setCurrentIndex(max(0, editor.findData(_NONE if value is None else value)))
    elif isinstance(editor, QLineEdit):
        editor.setText(", ".join(value) if spec.kind == "list" else (value or ""))
    else:
        # None ("automatic") shows as unchecked for gradient checkpointing on the CPU.
        editor.setChecked(bool(value))


def _editor_value(editor: QWidget, spec: Setting) -> Any:
    if isinstance(editor, QSpinBox):
        return int(editor.value())
    if isinstance(editor, QDoubleSpinBox):
        return float(editor.value())
    if isinstance(editor, QComboBox):
        value = editor.currentData()
        return None if value == _NONE else value
    if isinstance(editor, QLineEdit):
        text = editor.text().strip()
        if spec.kind == "list":
            return [part.strip() for part in text.split(",") if part.strip()]
        return text or (None if spec.optional else "")
    return editor.isChecked()
