"""The Chat tab's LoRA adapter row: an on/off checkbox and a scale (slider and number kept in step).

It only shows and emits the choice; the chat session applies it to the model before the next answer
(the base GGUF stays loaded).  Knows nothing about the engine.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QWidget

SCALE_MAX = 2.0
SCALE_STEP = 0.05
_TICKS = round(SCALE_MAX / SCALE_STEP)  # the slider counts in steps of 0.05

SCALE_TIP = (
    "How strongly your fine-tuning changes the model.\n"
    "1 = exactly as trained. 0 = not at all (the same as switching it off).\n"
    "Between 0 and 1 = a milder version; above 1 = exaggerated, which can make answers worse."
)
ON_TIP = (
    "On: the base model answers with your LoRA adapter (your fine-tuning) applied.\n"
    "Off: the base model alone, as it was before training. Switching needs no re-export."
)


class AdapterControls(QWidget):
    """Signals: sig_changed(bool enabled, float scale) whenever either control changes."""

    sig_changed = Signal(bool, float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.enabled_check = QCheckBox("LoRA adapter on")
        self.enabled_check.setChecked(True)
        self.enabled_check.setToolTip(ON_TIP)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, _TICKS)
        self.slider.setValue(round(1.0 / SCALE_STEP))
        self.slider.setToolTip(SCALE_TIP)
        self.slider.setMinimumWidth(120)  # a slider narrower than this reads as a checkbox
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setRange(0.0, SCALE_MAX)
        self.scale_spin.setSingleStep(SCALE_STEP)
        self.scale_spin.setDecimals(2)
        self.scale_spin.setValue(1.0)
        self.scale_spin.setToolTip(SCALE_TIP)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.enabled_check)
        layout.addWidget(QLabel("Scale:"))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.scale_spin)
        self.enabled_check.toggled.connect(self._on_enabled)
        self.slider.valueChanged.connect(lambda ticks: self.scale_spin.setValue(ticks * SCALE_STEP))
        self.scale_spin.valueChanged.connect(self._on_scale)

    def enabled(self) -> bool:
        return self.enabled_check.isChecked()

    def scale(self) -> float:
        return round(self.scale_spin.value(), 2)

    def set_values(self, enabled: bool, scale: float) -> None:
        """Set both controls (e.g. restored settings); emits sig_changed."""
        self.enabled_check.setChecked(bool(enabled))
        self.scale_spin.setValue(min(SCALE_MAX, max(0.0, float(scale))))

    def _on_enabled(self, on: bool) -> None:
        self.slider.setEnabled(on)
        self.scale_spin.setEnabled(on)
        self.sig_changed.emit(on, self.scale())

    def _on_scale(self, value: float) -> None:
        ticks = round(value / SCALE_STEP)
        if self.slider.value() != ticks:
            self.slider.blockSignals(True)  # no echo back into the spin box
            self.slider.setValue(ticks)
            self.slider.blockSignals(False)
        self.sig_changed.emit(self.enabled(), self.scale())
