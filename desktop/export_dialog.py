"""The Export dialog: save the trained run as a LoRA adapter, a merged model, or a GGUF file for
llama.cpp / Ollama.  It only collects the choice; the controller runs the export in the background.
"""

from __future__ import annotations

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

FORMAT_LABELS = {
    "lora": "LoRA adapter (small; needs the base model)",
    "merged": "Merged 16-bit model (Hugging Face folder)",
    "gguf": "GGUF file (llama.cpp, Ollama, LM Studio)",
    "gguf-lora": "LoRA adapter as GGUF (applied to the base GGUF by llama.cpp / Ollama)",
}
QUANT_LABELS = {
    "f32": "F32 — exact, very large",
    "f16": "F16 — full quality, large",
    "bf16": "BF16 — full quality, large",
    "q8_0": "Q8_0 — nearly full quality, half the size of F16",
    "q6_k": "Q6_K — very good quality, smaller",
    "q5_k_m": "Q5_K_M — good quality, small",
    "q4_k_m": "Q4_K_M — small and fast, slight quality loss (popular)",
}


class ExportDialog(QDialog):
    """Choose format, quantization and (optionally) where to write."""

    def __init__(self, run_dir: str, formats: list[str], quants: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export the trained model")
        self.format_combo = QComboBox()
        for fmt in formats:
            self.format_combo.addItem(FORMAT_LABELS.get(fmt, fmt), fmt)
        self.format_combo.setToolTip(
            "LoRA: tiny file for Python tools. Merged: a full model folder.\n"
            "GGUF: one file for llama.cpp-based apps (with an Ollama Modelfile)."
        )
        self.quant_combo = QComboBox()
        for key in quants:
            self.quant_combo.addItem(QUANT_LABELS.get(key, key.upper()), key)
        self.quant_combo.setCurrentIndex(max(0, self.quant_combo.findData("q8_0")))
        self.quant_combo.setToolTip(
            "How much to compress the GGUF. Smaller files run faster on weak machines\n"
            "but lose a little quality."
        )
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("inside the run folder (default)")
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
        form.addRow(QLabel(f"Run: {run_dir}"))
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
