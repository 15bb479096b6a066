"""The "Evaluate…" dialog: a run's "did it work?" report made in the background, with progress, Cancel
and "Open report".

`EvalDialog(run_dir)` offers the report's options (a prompts file, a judge GGUF, a limit), runs the
engine's `EvalRun` on a QThread through `EvalWorker` (progress as signals; Cancel reaches the run's
handle) and ends with the report's folder and an "Open report" button that opens report.html in the
browser.  Opened from the Train tab after a run and from the Past runs dialog.  Knows widgets and the
evaluation's options; the work is core.evaluation's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from tunesmith.desktop.logic.formatting import friendly_path

if TYPE_CHECKING:
    from tunesmith.core.evaluation.runner import EvalOptions, EvalRun


def has_trained_model(run_dir: str | None) -> bool:
    """Whether a run folder saved a model to evaluate (a LoRA adapter or a full model)."""
    if not run_dir:
        return False
    adapter = Path(run_dir) / "adapter"
    return (adapter / "adapter_config.json").is_file() or (adapter / "config.json").is_file()


class EvalWorker(QObject):
    """Runs one report on a QThread.

    Signals: sig_progress(EvalProgress); sig_done(str) the report's folder; sig_failed(str) what went
    wrong in words ("" after a Cancel); sig_finished() always last.
    """

    sig_progress = Signal(object)
    sig_done = Signal(str)
    sig_failed = Signal(str)
    sig_finished = Signal()

    def __init__(self, run_dir: str, options: EvalOptions):
        super().__init__()
        self._run_dir = run_dir
        self._options = options
        self._lock = threading.Lock()
        self._handle: EvalRun | None = None
        self._cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._handle is not None:
                self._handle.cancel()

    @Slot()
    def run(self) -> None:
        from tunesmith.core.evaluation.perplexity import EvalCancelled
        from tunesmith.core.evaluation.runner import EvalRun

        try:
            handle = EvalRun(self._run_dir, self._options, self.sig_progress.emit)
            with self._lock:
                self._handle = handle
                if self._cancelled:
                    handle.cancel()
            self.sig_done.emit(str(handle.run()))
        except EvalCancelled:
            self.sig_failed.emit("")
        except Exception as exc:  # noqa: BLE001 - every failure reaches the dialog in words
            self.sig_failed.emit(str(exc) or type(exc).__name__)
        finally:
            self.sig_finished.emit()


class EvalDialog(QDialog):
    """Options, then progress with Cancel, then "Open report".  `report_folder` is set when done."""

    def __init__(self, run_dir: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Evaluate the run")
        self.resize(620, 260)
        self.run_dir = run_dir
        self.report_folder = ""
        self._thread: QThread | None = None
        self._worker: EvalWorker | None = None
        intro = QLabel(
            f"A report on {friendly_path(run_dir)}: what the tuned model learned (loss on rows it did not "
            "train on), its answers beside the base model's, and whether it forgot general language."
        )
        intro.setWordWrap(True)
        self.prompts_edit = QLineEdit()
        self.prompts_edit.setPlaceholderText("the run's held-out rows")
        # A run trained with no evaluation split (the default) has no held-out rows of its own: the user
        # names a file of rows it did not train on, or the report cannot say what the run learned.
        self.kept_rows_aside = _kept_rows_aside(run_dir)
        self.split_edit = QLineEdit()
        self.split_edit.setPlaceholderText(
            "the run's evaluation split" if self.kept_rows_aside else "required: this run kept no rows aside"
        )
        self.judge_edit = QLineEdit()
        self.judge_edit.setPlaceholderText("none (optional: a .gguf model that judges the answers)")
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 100_000)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("Score at most this many rows and prompts per part (0 = all)")
        form = QFormLayout()
        form.addRow("Held-out rows:", _with_browse(self.split_edit, self._browse_split))
        form.addRow("Prompts (JSONL):", _with_browse(self.prompts_edit, self._browse_prompts))
        form.addRow("Judge model:", _with_browse(self.judge_edit, self._browse_judge))
        form.addRow("Limit:", self.limit_spin)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status_label = QLabel(
            "Press Evaluate to start. It runs in the background."
            if self.kept_rows_aside
            else "This run kept no rows aside for evaluation: choose a file of held-out rows (the same "
            "format as the training data, rows it did not train on), then press Evaluate."
        )
        self.status_label.setWordWrap(True)
        buttons = QDialogButtonBox()
        self.start_button = buttons.addButton("Evaluate", QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button = buttons.addButton("Open report", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setEnabled(False)
        self.cancel_button = buttons.addButton("Close", QDialogButtonBox.ButtonRole.RejectRole)
        self.start_button.clicked.connect(self.start)
        self.open_button.clicked.connect(self.open_report)
        self.cancel_button.clicked.connect(self._cancel_or_close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(buttons)

    def is_running(self) -> bool:
        return self._thread is not None

    def options(self) -> EvalOptions:
        """What the fields say, as the report's options."""
        from tunesmith.core.evaluation.runner import EvalOptions

        return EvalOptions(
            prompts_file=self.prompts_edit.text().strip() or None,
            judge_gguf=self.judge_edit.text().strip() or None,
            limit=self.limit_spin.value() or None,
            split_file=self.split_edit.text().strip() or None,
        )

    def start(self) -> None:
        if self.is_running():
            return
        options = self.options()
        self.report_folder = ""
        self.open_button.setEnabled(False)
        self.start_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.status_label.setText("Loading the base model and the run's adapter…")
        self._thread = QThread(self)
        self._worker = EvalWorker(self.run_dir, options)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.sig_progress.connect(self._on_progress)
        self._worker.sig_done.connect(self._on_done)
        self._worker.sig_failed.connect(self._on_failed)
        self._worker.sig_finished.connect(self._on_finished)
        self._thread.start()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.status_label.setText("Cancelling after the current step…")

    def _cancel_or_close(self) -> None:
        if self.is_running():
            self.cancel()
        else:
            self.reject()

    def reject(self) -> None:
        if self.is_running():  # Esc or the window's close while it runs: cancel first, then close
            self.cancel()
            return
        super().reject()

    def open_report(self) -> bool:
        if not self.report_folder:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.report_folder) / "report.html")))

    @Slot(object)
    def _on_progress(self, progress) -> None:
        self.progress.setValue(int(progress.fraction * 100))
        eta = progress.eta_seconds
        left = "" if eta is None else f" — about {_duration(eta)} left"
        self.status_label.setText(f"{progress.part}: {progress.message}{left}")

    @Slot(str)
    def _on_done(self, folder: str) -> None:
        self.report_folder = folder
        self.progress.setValue(100)
        self.open_button.setEnabled(True)
        self.status_label.setText(f"The report is ready in {friendly_path(folder)}. Open it to read it.")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status_label.setText(
            "Cancelled: no report was written." if not message else f"The report could not be made: {message}"
        )

    @Slot()
    def _on_finished(self) -> None:
        thread, self._thread, self._worker = self._thread, None, None
        if thread is not None:
            thread.quit()
            thread.wait()
        self.start_button.setEnabled(True)
        self.start_button.setText("Evaluate again")
        self.cancel_button.setText("Close")

    def _browse_split(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Held-out rows", self.run_dir, "Datasets (*.jsonl *.json *.csv *.parquet *.txt)"
        )
        if path:
            self.split_edit.setText(path)

    def _browse_prompts(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Prompts to answer", self.run_dir, "JSON lines (*.jsonl)")
        if path:
            self.prompts_edit.setText(path)

    def _browse_judge(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Judge model", "", "GGUF models (*.gguf)")
        if path:
            self.judge_edit.setText(path)


def _kept_rows_aside(run_dir: str) -> bool:
    """Whether the run's config.yaml kept an evaluation split (unknown: assume it did)."""
    import yaml

    try:
        config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
        return float(config["data"]["eval_ratio"]) > 0
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
        return True


def _with_browse(edit: QLineEdit, browse) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    layout.addWidget(button)
    return row


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
