"""The Dataset tab: pick a file, see how the model will read it, and what is wrong with it.

Shows the detected format (overridable), usable rows, the first rows rendered with the chat template
(trained-on text highlighted; a preference pair's rejected answer in red, a prompt-only row with its
reference answer), a token-length histogram with the max-length cut, and every problem with its line
number.  Reading and rendering happen in the controller's background jobs.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from tunesmith.core.data.formats import FORMAT_HOLDS, methods_for
from tunesmith.desktop.logic.settings_spec import setting, tooltip
from tunesmith.desktop.widgets.length_histogram import LengthHistogram

FORMAT_SETTING = setting("data.format")
FORMATS = tuple(FORMAT_SETTING.choices)
FILE_FILTER = "Datasets (*.jsonl *.json *.csv *.parquet *.txt);;All files (*)"
TRAINED_STYLE = "background-color: rgba(46, 139, 87, 0.30);"
REJECTED_STYLE = "background-color: rgba(214, 39, 40, 0.25);"
# What the formats only some methods learn from hold, and for which: after the format's name.
FORMAT_USES = {
    data_format: f"{holds}, for {' or '.join(method.upper() for method in methods_for(data_format))}"
    for data_format, holds in FORMAT_HOLDS.items()
}


class DatasetTab(QWidget):
    """Edits `controller.config.data.path/format`; shows `controller.sig_dataset` previews."""

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setAcceptDrops(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("Drop a dataset file here, or click Open…")
        self.path_edit.setToolTip(tooltip(setting("data.path")))
        self.path_edit.setObjectName("data.path")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Choose a dataset file (Ctrl+O)")
        self.sample_button = QPushButton("Use sample")
        self.sample_button.setToolTip("The small sample dataset that comes with Tunesmith.")
        self.format_combo = QComboBox()
        self.format_combo.addItems(FORMATS)
        for row, words in enumerate(FORMAT_SETTING.choices.values()):
            self.format_combo.setItemData(row, words, Qt.ItemDataRole.ToolTipRole)
        self.format_combo.setToolTip(tooltip(FORMAT_SETTING))
        self.format_combo.setObjectName("data.format")
        self.summary_label = QLabel("No dataset yet.")
        self.summary_label.setWordWrap(True)

        self.rows_table = QTableWidget(0, 3)
        self.rows_table.setHorizontalHeaderLabels(["Tokens", "Cut", "Text as the model sees it"])
        self.rows_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.rows_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rows_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.row_view = QTextBrowser()
        self.row_view.setToolTip(
            "Highlighted text is what the model is trained to produce;\nthe rest is context it reads.\n"
            "For a preference pair, the rejected answer (red) is the one it learns to avoid."
        )
        self.histogram = LengthHistogram()
        self.problems_table = QTableWidget(0, 3)
        self.problems_table.setHorizontalHeaderLabels(["Line", "Field", "Problem"])
        self.problems_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.problems_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)

        top = QHBoxLayout()
        top.addWidget(QLabel("File:"))
        top.addWidget(self.path_edit, 1)
        top.addWidget(self.open_button)
        top.addWidget(self.sample_button)
        top.addWidget(QLabel("Format:"))
        top.addWidget(self.format_combo)
        preview = QSplitter(Qt.Orientation.Vertical)
        preview.addWidget(self.rows_table)
        preview.addWidget(self.row_view)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.histogram, "Lengths")
        self.side_tabs.addTab(self.problems_table, "Problems")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("datasetSplitter")
        self.splitter.addWidget(preview)
        self.splitter.addWidget(self.side_tabs)
        self.splitter.setSizes([600, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.splitter, 1)

        self.open_button.clicked.connect(self.choose_file)
        self.sample_button.clicked.connect(lambda: self.open_path("sample"))
        self.path_edit.editingFinished.connect(self._on_path_edited)
        self.format_combo.currentTextChanged.connect(self._on_format)
        self.rows_table.currentCellChanged.connect(lambda row, *_: self.show_row(row))
        controller.sig_dataset.connect(self.show_preview)
        controller.sig_dataset_busy.connect(self._on_busy)
        self._preview = None

    # -- choosing ---------------------------------------------------------------------------------
    def choose_file(self) -> None:
        """Open a file dialog and load the chosen dataset."""
        start = str(Path(self.path_edit.text()).parent) if self.path_edit.text() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset", start, FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> None:
        """Load `path` ("sample" for the bundled one) with the selected format."""
        self.path_edit.setText("" if path == "sample" else path)
        self.controller.load_dataset(path, self.format_combo.currentText())

    def _on_path_edited(self) -> None:
        text = self.path_edit.text().strip()
        shown = self._preview.path if self._preview is not None else None
        if text and text not in (self.controller.config.data.path, shown):
            self.open_path(text)

    def _on_format(self, fmt: str) -> None:
        if fmt != self.controller.config.data.format:
            self.controller.load_dataset(None, fmt)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0].toLocalFile())
            event.acceptProposedAction()

    # -- showing --------------------------------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        if busy:
            self.summary_label.setText("Reading the dataset…")

    def show_preview(self, preview) -> None:
        """Fill the summary, rows, histogram and problems from a DatasetPreview."""
        self._preview = preview
        self.path_edit.setText(preview.path)
        self.format_combo.blockSignals(True)
        if self.controller.config.data.format == "auto":
            self.format_combo.setCurrentText("auto")
        self.format_combo.blockSignals(False)
        max_length = self.controller.config.data.max_length
        self.histogram.set_lengths(preview.lengths, max_length)
        self.summary_label.setText(self.summary_text(preview, self.histogram.over_cut))
        self.rows_table.setRowCount(len(preview.rows))
        for r, row in enumerate(preview.rows):
            summary = row.summary()[:300]
            for c, value in enumerate([str(row.num_tokens), "yes" if row.truncated else "", summary]):
                item = QTableWidgetItem(value)
                item.setToolTip(row.text[:2000])
                self.rows_table.setItem(r, c, item)
        self.rows_table.setVerticalHeaderLabels([str(row.line) for row in preview.rows])
        self.problems_table.setRowCount(len(preview.problems))
        for r, (line, field, message) in enumerate(preview.problems):
            for c, value in enumerate(["" if line is None else str(line), field, message]):
                self.problems_table.setItem(r, c, QTableWidgetItem(value))
        self.side_tabs.setTabText(1, f"Problems ({len(preview.problems)})")
        if preview.rows:
            self.rows_table.selectRow(0)
            self.show_row(0)
        else:
            self.row_view.setPlainText(preview.render_error or "No rows to show.")

    def show_row(self, index: int) -> None:
        """Show one rendered row, trained-on segments highlighted."""
        if self._preview is None or not (0 <= index < len(self._preview.rows)):
            return
        row = self._preview.rows[index]
        page = _pre(row.segments, TRAINED_STYLE)
        if row.kind == "pair":
            page = (
                "<b>✔ Chosen answer</b> (the model learns to prefer it):"
                + page
                + "<b>✘ Rejected answer</b> (the model learns to avoid it):"
                + _pre(row.rejected, REJECTED_STYLE)
            )
        elif row.kind == "prompt":
            answer = (
                f"<b>Reference answer:</b> {html.escape(row.answer)}"
                if row.answer
                else "No reference answer: the rewards judge each answer on its own."
            )
            page = (
                "<b>The prompt, as the model is asked it</b> (it writes the answers itself):" + page + answer
            )
        self.row_view.setHtml(page)

    @staticmethod
    def summary_text(preview, over_cut: int) -> str:
        """One line about the file: format, usable rows, lengths, problems."""
        use = FORMAT_USES.get(preview.format)
        text = (
            f"Format: <b>{preview.format}</b>{f' ({use})' if use else ''} — <b>{preview.usable_rows}</b> of "
            f"{preview.total_rows} rows usable"
        )
        if preview.stats:
            stats = preview.stats
            text += f" — tokens per example: median {stats.get('median', 0):.0f}, max {stats.get('max', 0)}"
            if preview.measured_rows < preview.usable_rows:
                text += f" (first {preview.measured_rows} rows)"
        if over_cut:
            text += f" — <b>{over_cut}</b> example(s) are longer than the max length and will be cut"
        if preview.problems:
            text += f" — <b>{len(preview.problems)}</b> problem(s), see Problems"
        if preview.render_error:
            text += f"<br>{html.escape(preview.render_error)}"
        return text

    def update_cut(self) -> None:
        """Redraw the max-length line after the setting changed."""
        self.histogram.set_cut(self.controller.config.data.max_length)
        if self._preview is not None:
            self.summary_label.setText(self.summary_text(self._preview, self.histogram.over_cut))


def _pre(segments: list[tuple[str, bool]], style: str) -> str:
    """Rendered text with its trained-on segments highlighted in `style`."""
    parts = [
        f'<span style="{style}">{html.escape(t)}</span>' if trained else html.escape(t)
        for t, trained in segments
    ]
    return f"<pre style='white-space: pre-wrap'>{''.join(parts)}</pre>"
