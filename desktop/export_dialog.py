"""The Export dialog: save the trained run as a LoRA adapter, a merged model, or a GGUF file for
llama.cpp / Ollama.  It only collects the choice, and says where the file will go (the run's exports
folder unless another is chosen); the controller runs the export in the background and the window's
banner shows its progress and, at the end, the file with Open folder / Copy path.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from tunesmith.desktop.logic.formatting import friendly_path


class ExportDialog(QDialog):
    """Choose format, quantization and (optionally) where to write."""

    def __init__(
        self, run_dir: str, formats: dict[str, str], quants: dict[str, str], parent: QWidget | None = None
    ):
        """`formats` and `quants` map the engine's names to their words (`engines.export_choices()`)."""
        super().__init__(parent)
        self.setWindowTitle("Export the trained model")
        self.format_combo = QComboBox()
        for fmt, words in formats.items():
            self.format_combo.addItem(words, fmt)
        self.format_combo.setToolTip(
            "LoRA: tiny file for Python tools. Merged: a full model folder.\n"
            "GGUF: one file for llama.cpp-based apps (with an Ollama Modelfile)."
        )
        self.quant_combo = QComboBox()
        for key, words in quants.items():
            self.quant_combo.addItem(words, key)
        self.quant_combo.setCurrentIndex(max(0, self.quant_combo.findData("q8_0")))
        self.quant_combo.setToolTip(
            "How much to compress the GGUF. Smaller files run faster on weak machines\n"
            "but lose a little quality."
        )
        self.output_edit = QLineEdit()
        self.default_folder = Path(run_dir) / "exports"  # where core.export.runs puts exports by default
        self.output_edit.setPlaceholderText(f"{friendly_path(self.default_folder)} (the default)")
        self.output_edit.setToolTip("Leave empty to save in the run's exports folder; or choose a folder.")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(browse)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(f"Run: {friendly_path(run_dir)}"))
        form.addRow("Format:", self.format_combo)
        form.addRow("Quantization:", self.quant_combo)
        form.addRow("Save to:", output_row)
        form.addRow(buttons)
        self.format_combo.currentIndexChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        self.quant_combo.setEnabled(self.format_combo.currentData() == "gguf")

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into folder")
        if path:
            self.output_edit.setText(path)

    def choice(self) -> tuple[str, str | None, str | None]:
        """(format, quantization or None, output path or None)."""
        fmt = self.format_combo.currentData()
        quant = self.quant_combo.currentData() if fmt == "gguf" else None
        return fmt, quant, self.output_edit.text().strip() or None
