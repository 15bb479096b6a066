"""The model panel: which model to fine-tune, at what precision, what this machine has, and whether
the choice will fit in memory — all before anything is loaded.

It edits `controller.config.model` and shows the controller's hardware and VRAM estimate.  It knows
nothing about training itself.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tunesmith.desktop.logic.presets import machine_limits
from tunesmith.desktop.logic.settings_spec import setting_at, tooltip

DEMO_LABEL = "Demo model — SmolLM2-135M-Instruct (embedded, works offline)"
KINDS = [("demo", DEMO_LABEL), ("folder", "Local model folder"), ("gguf", "GGUF file"), ("hub", "Hub id")]
PRECISION = setting_at("model.precision")


class ModelPanel(QGroupBox):
    """Model source, precision, GPU facts and the VRAM estimate."""

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__("Model", parent)
        self.controller = controller
        self.kind_combo = QComboBox()
        for key, label in KINDS:
            self.kind_combo.addItem(label, key)
        self.kind_combo.setToolTip(tooltip(setting_at("model.source")))
        self.kind_combo.setObjectName("model.source")
        self.location_edit = QLineEdit()
        self.location_edit.setPlaceholderText(
            "folder, .gguf file or hub id like HuggingFaceTB/SmolLM2-135M-Instruct"
        )
        self.browse_button = QPushButton("Browse…")
        self.precision_combo = QComboBox()
        self.precision_combo.setToolTip(tooltip(PRECISION))
        self.precision_combo.setObjectName("model.precision")
        for key, label in PRECISION.choices.items():
            self.precision_combo.addItem(label, key)
        self.hardware_label = QLabel("Detecting hardware…")
        self.hardware_label.setWordWrap(True)
        self.vram_label = QLabel("Memory estimate: waiting for hardware detection…")
        self.vram_label.setWordWrap(True)

        # Two rows, so the panel takes little of a laptop screen's height on every tab: what to train
        # (model, precision), then what this machine has and whether it fits.
        for combo in (self.kind_combo, self.precision_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
        source_row = QHBoxLayout()
        source_row.addWidget(QLabel("Model:"))
        source_row.addWidget(self.kind_combo, 2)
        source_row.addWidget(self.location_edit, 3)
        source_row.addWidget(self.browse_button)
        source_row.addSpacing(12)
        source_row.addWidget(QLabel("Precision:"))
        source_row.addWidget(self.precision_combo, 1)
        facts_row = QHBoxLayout()
        facts_row.addWidget(self.hardware_label, 1)
        facts_row.addWidget(self.vram_label, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 2, 6, 4)
        column.setSpacing(2)
        column.addLayout(source_row)
        column.addLayout(facts_row)

        self.kind_combo.currentIndexChanged.connect(self._on_kind)
        self.location_edit.editingFinished.connect(self._apply_source)
        self.browse_button.clicked.connect(self._browse)
        self.precision_combo.currentIndexChanged.connect(self._on_precision)
        controller.sig_hardware.connect(self.show_hardware)
        controller.sig_vram.connect(self.show_vram)
        controller.sig_vram_text.connect(lambda text: self._set_vram_text(text, warn=False))
        controller.sig_config.connect(lambda _config: self.load_from_config())
        self.load_from_config()

    # -- config <-> widgets -----------------------------------------------------------------------
    def load_from_config(self) -> None:
        """Show the controller's model settings."""
        source = self.controller.config.model.source
        kind = "demo" if source in ("demo", "", "embedded") else _guess_kind(source)
        self.kind_combo.blockSignals(True)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(kind)))
        self.kind_combo.blockSignals(False)
        self.location_edit.setText("" if kind == "demo" else source)
        self._update_location_enabled()
        self.precision_combo.blockSignals(True)
        self.precision_combo.setCurrentIndex(
            max(0, self.precision_combo.findData(self.controller.config.model.precision))
        )
        self.precision_combo.blockSignals(False)

    def current_source(self) -> str:
        """What the user chose, as a ModelConfig.source string."""
        if self.kind_combo.currentData() == "demo":
            return "demo"
        return self.location_edit.text().strip()

    def _on_kind(self) -> None:
        self._update_location_enabled()
        if self.kind_combo.currentData() == "demo" or self.location_edit.text().strip():
            self._apply_source()
        elif self.kind_combo.currentData() in ("folder", "gguf"):
            self._browse()

    def _update_location_enabled(self) -> None:
        kind = self.kind_combo.currentData()
        self.location_edit.setEnabled(kind != "demo")
        self.browse_button.setEnabled(kind in ("folder", "gguf"))

    def _apply_source(self) -> None:
        source = self.current_source()
        if source:
            self.controller.set_model_source(source)

    def _browse(self) -> None:
        kind = self.kind_combo.currentData()
        if kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Choose a Hugging Face model folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF file", "", "GGUF models (*.gguf)")
        if path:
            self.location_edit.setText(path)
            self._apply_source()

    def _on_precision(self) -> None:
        self.controller.config.model.precision = self.precision_combo.currentData()
        self.controller.config_changed()

    # -- hardware and memory ------------------------------------------------------------------------
    def show_hardware(self, hardware) -> None:
        """Show the GPU (or CPU-only) line and disable precisions this machine cannot use."""
        if hardware is None:
            self.hardware_label.setText("Could not detect the hardware (see the message above).")
            return
        # One short line (the details are in the tooltip): a second line would cost every tab its height.
        if getattr(hardware, "device", "cpu") == "cuda":
            cc = ".".join(str(v) for v in (hardware.compute_capability or ()))
            text = (
                f"<b>{hardware.gpu_name}</b> — {hardware.vram_free_gb:.1f} of "
                f"{hardware.vram_total_gb:.1f} GiB VRAM free"
            )
            details = f"Compute capability {cc}"
        else:
            text = f"<b>CPU only — training will be slow</b> ({hardware.ram_total_gb:.0f} GiB RAM)"
            details = "The demo model still trains in minutes on a CPU."
        self.hardware_label.setText(text)
        self.hardware_label.setToolTip(f"{hardware.summary()}\n{details}")
        limits = machine_limits(hardware)
        model = self.precision_combo.model()
        for row in range(self.precision_combo.count()):
            reason = limits.get(f"model.precision={self.precision_combo.itemData(row)}")
            item = model.item(row)
            item.setEnabled(reason is None)
            item.setToolTip(reason or tooltip(PRECISION))

    def show_vram(self, estimate) -> None:
        """Show the memory estimate, in red with a warning when it will not fit."""
        if estimate is None:
            return
        where = "VRAM" if getattr(self.controller.hardware, "device", "cpu") == "cuda" else "RAM"
        text = f"about {estimate.total_gb:.1f} GiB of {where} needed"
        if not estimate.fits:
            text = f"Will not fit: {text}. {estimate.message}"
        elif estimate.message and f"{estimate.total_gb:.1f} GiB" not in estimate.message:
            text = f"{text} — {estimate.message}"
        if estimate.fits:
            text = f"Memory: {text}"  # the row has no form label: the line says what it is
        parts = "\n".join(f"{name}: {gb:.2f} GiB" for name, gb in dict(estimate.parts).items())
        self._set_vram_text(text, warn=not estimate.fits, tooltip=parts)

    def _set_vram_text(self, text: str, warn: bool, tooltip: str = "") -> None:
        self.vram_label.setText(("⚠ " if warn else "") + text)
        self.vram_label.setObjectName("vramWarning" if warn else "vramOk")
        self.vram_label.setToolTip(tooltip)
        self.vram_label.style().unpolish(self.vram_label)
        self.vram_label.style().polish(self.vram_label)


def _guess_kind(source: str) -> str:
    if source.lower().endswith(".gguf"):
        return "gguf"
    if source.startswith(("/", "~", ".")) or "\\" in source or ":" in source:
        return "folder"
    return "hub"
