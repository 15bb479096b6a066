"""Number fields that let a person type any number, so one outside the allowed range can be refused in
words instead of being silently dropped or clamped.

Qt's spin boxes reject a keystroke that leaves the range (typing 0 where 1 is the least does nothing)
and clamp a typed 5 to the maximum.  These accept any number while typing (as "intermediate"), keep
the last allowed value when editing ends, and let the form read what was typed (`typed_value`) to say
why it was not used.  `ScientificSpinBox` also shows small numbers as people write them (2e-4).
"""

from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


class CheckedSpinBox(QSpinBox):
    """A whole-number field that takes any number while typing; out of range it keeps the last value."""

    def typed_value(self, text: str) -> float | None:
        value, ok = self.locale().toInt(text.strip())
        return float(value) if ok else None

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        return _typed_state(self, text), text, pos


class CheckedDoubleSpinBox(QDoubleSpinBox):
    """A decimal field that takes any number while typing; out of range it keeps the last value."""

    def typed_value(self, text: str) -> float | None:
        value, ok = self.locale().toDouble(text.strip())
        return value if ok else None

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        return _typed_state(self, text), text, pos


class ScientificSpinBox(CheckedDoubleSpinBox):
    """Shows small numbers the way people write them (2e-4, not 0.0002000); arrows halve and double."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        typed = self.typed_value(text)
        return self.value() if typed is None else typed

    def typed_value(self, text: str) -> float | None:
        try:
            return float(text.strip())
        except ValueError:
            return None

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        """Up/down multiply or divide by 2 (learning rates move in ratios, not in fixed steps)."""
        self.setValue(self.value() * (2.0**steps))


NumberField = CheckedSpinBox | CheckedDoubleSpinBox


def _typed_state(box: NumberField, text: str) -> QValidator.State:
    stripped = text.strip()
    if box.specialValueText() and stripped == box.specialValueText():
        return QValidator.State.Acceptable
    if stripped in ("", "-", "+", ".", "-."):
        return QValidator.State.Intermediate  # on the way to a number
    value = box.typed_value(stripped)
    if value is None:
        return QValidator.State.Invalid  # letters: the keystroke is refused
    in_range = box.minimum() <= value <= box.maximum()
    return QValidator.State.Acceptable if in_range else QValidator.State.Intermediate
