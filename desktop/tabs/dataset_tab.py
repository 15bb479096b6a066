"""The Dataset tab: pick a file, see how the model will read it, and what is wrong with it.

Shows the detected format (overridable), usable rows, the first rows rendered with the chat template
(trained-on text highlighted; a preference pair's rejected answer in red, a prompt-only row with its
reference answer), a token-length histogram with the max-length cut, and every problem with its line
number.  Reading and rendering happen in the controller's background jobs.

A file that cannot be used clears the preview and stays marked "can't be used" with the reason (and
every problem under Problems) until a load succeeds; a table whose columns are not named as usual gets
the column step (which is the question, which the answer), remembered per file.  Reload (F5), Enter in
the path field, or the notice that appears when the file changes on disk read it again; clicking a
problem shows its line as the file holds it.  Import… opens the Import wizard (desktop/import_wizard.py:
chat exports or documents to a new dataset file), which ends by opening that file here.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
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

from tunesmith.core.data.formats import FORMAT_HOLDS, columns_text, methods_for
from tunesmith.core.data.stats import too_long_fate
from tunesmith.desktop import persistence
from tunesmith.desktop.logic.dataset_preview import raw_line, resolve_dataset_path
from tunesmith.desktop.logic.settings_spec import setting_at, tooltip
from tunesmith.desktop.logic.template_view import readable
from tunesmith.desktop.widgets.column_step import ColumnStep
from tunesmith.desktop.widgets.length_histogram import LengthHistogram

FORMAT_SETTING = setting_at("data.format")
FORMATS = tuple(FORMAT_SETTING.choices)
FILE_FILTER = "Datasets (*.jsonl *.json *.csv *.parquet *.txt);;All files (*)"
TRAINED_STYLE = "background-color: rgba(46, 139, 87, 0.30);"
REJECTED_STYLE = "background-color: rgba(214, 39, 40, 0.25);"
UNUSABLE_STYLE = "QLabel { background-color: rgba(214, 39, 40, 0.18); padding: 6px; }"
NOTICE_STYLE = "#datasetChanged { background-color: rgba(230, 160, 20, 0.22); }"
COLUMNS_KEY = "dataset/columns"  # file path -> the question/answer columns the user chose for it
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
        self.path_edit.setToolTip(tooltip(setting_at("data.path")))
        self.path_edit.setObjectName("data.path")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Choose a dataset file (Ctrl+O)")
        self.sample_button = QPushButton("Use sample")
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip(
            "Make a dataset from your chat exports (WhatsApp, Telegram, Discord, a table) or documents\n"
            "(PDF, Word, text), with personal data replaced. Nothing leaves this computer."
        )
        self.import_wizard = None  # the open Import wizard, if any
        self.sample_button.setToolTip("The small sample dataset that comes with Tunesmith.")
        self.format_combo = QComboBox()
        self.format_combo.addItems(FORMATS)
        for row, words in enumerate(FORMAT_SETTING.choices.values()):
            self.format_combo.setItemData(row, words, Qt.ItemDataRole.ToolTipRole)
        self.format_combo.setToolTip(tooltip(FORMAT_SETTING))
        self.format_combo.setObjectName("data.format")
        self.reload_button = QPushButton("Reload")
        self.reload_button.setShortcut("F5")
        self.reload_button.setToolTip("Read the file again, after you changed it (F5)")
        self.summary_label = QLabel("No dataset yet.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.column_step = ColumnStep()
        self.changed_notice = QFrame()
        self.changed_notice.setObjectName("datasetChanged")
        self.changed_notice.setStyleSheet(NOTICE_STYLE)
        self.changed_label = QLabel("The file changed on disk.")
        self.changed_reload = QPushButton("Reload")
        notice_row = QHBoxLayout(self.changed_notice)
        notice_row.addWidget(self.changed_label, 1)
        notice_row.addWidget(self.changed_reload)
        self.changed_notice.hide()
        self.watcher = QFileSystemWatcher(self)

        self.rows_table = QTableWidget(0, 3)
        self.rows_table.setHorizontalHeaderLabels(["Tokens", "Cut", "Text as the model sees it"])
        self.rows_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.rows_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rows_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.raw_check = QCheckBox("Show the raw text, as the model reads it")
        self.raw_check.setToolTip(
            "Off: the chat template's markup is shown as role headings ([User], [Assistant]).\n"
            "On: the exact text the model reads, markup and special tokens included."
        )
        self.raw_check.toggled.connect(lambda _on: self.show_row(self._shown_row))
        self._shown_row = 0
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
        top.addWidget(self.reload_button)
        top.addWidget(self.sample_button)
        top.addWidget(self.import_button)
        top.addWidget(QLabel("Format:"))
        top.addWidget(self.format_combo)
        preview = QSplitter(Qt.Orientation.Vertical)
        preview.addWidget(self.rows_table)
        row_box = QWidget()
        row_column = QVBoxLayout(row_box)
        row_column.setContentsMargins(0, 0, 0, 0)
        row_column.addWidget(self.raw_check)
        row_column.addWidget(self.row_view, 1)
        preview.addWidget(row_box)
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
        layout.addWidget(self.changed_notice)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.column_step)
        layout.addWidget(self.splitter, 1)

        self.open_button.clicked.connect(self.choose_file)
        self.sample_button.clicked.connect(lambda: self.open_path("sample"))
        self.import_button.clicked.connect(self.open_import)
        self.path_edit.editingFinished.connect(self._on_path_edited)
        self.path_edit.returnPressed.connect(self._on_path_entered)
        self.reload_button.clicked.connect(self.reload)
        self.changed_reload.clicked.connect(self.reload)
        self.watcher.fileChanged.connect(self._on_file_changed)
        self.column_step.sig_chosen.connect(self.use_columns)
        self.format_combo.currentTextChanged.connect(self._on_format)
        self.rows_table.currentCellChanged.connect(lambda row, *_: self.show_row(row))
        self.problems_table.currentCellChanged.connect(lambda row, *_: self.show_problem(row))
        controller.sig_dataset.connect(self.show_preview)
        controller.sig_dataset_failed.connect(self.show_failure)
        controller.sig_dataset_busy.connect(self._on_busy)
        self._preview = None
        self._failure = None
        self._problems: list[tuple[int | None, str, str]] = []
        self._shown_path = ""  # the file the preview or the failure is about

    # -- choosing ---------------------------------------------------------------------------------
    def choose_file(self) -> None:
        """Open a file dialog and load the chosen dataset."""
        start = str(Path(self.path_edit.text()).parent) if self.path_edit.text() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset", start, FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> None:
        """Load `path` ("sample" for the bundled one) with the selected format, and the question/answer
        columns chosen for it before, if any."""
        self.path_edit.setText("" if path == "sample" else path)
        self.changed_notice.hide()  # it was about the file shown until now
        columns = self.remembered_columns(path)
        fmt = self.format_combo.currentText()
        if columns and fmt not in ("auto", "alpaca"):
            fmt = "auto"  # the columns make it a question/answer table
            self._show_format(fmt)
        self.controller.load_dataset(path, fmt, columns)

    def open_import(self) -> None:
        """The Import wizard (desktop/import_wizard.py); the file it writes opens here."""
        from tunesmith.desktop.import_wizard import ImportWizard

        self.import_wizard = ImportWizard(self.controller, self)
        self.import_wizard.sig_imported.connect(self._open_imported)
        self.import_wizard.open()

    def _open_imported(self, path: str) -> None:
        self._show_format("auto")  # the importers write messages or text rows, detected as such
        self.open_path(path)

    def reload(self) -> None:
        """Read the current file again (F5), e.g. after fixing it."""
        self.changed_notice.hide()
        self.controller.load_dataset()

    def use_columns(self, columns: str) -> None:
        """Read the file with these question/answer columns, and remember them for it."""
        path = self.controller.config.data.path
        remembered = persistence.load_values(persistence.make_settings(), COLUMNS_KEY)
        remembered[_file_key(path)] = columns
        persistence.save_values(persistence.make_settings(), COLUMNS_KEY, remembered)
        if self.format_combo.currentText() not in ("auto", "alpaca"):
            self._show_format("auto")
        self.controller.load_dataset(None, self.format_combo.currentText(), columns)

    @staticmethod
    def remembered_columns(path: str) -> str:
        """The question/answer columns chosen for this file before ("" if none)."""
        remembered = persistence.load_values(persistence.make_settings(), COLUMNS_KEY)
        return str(remembered.get(_file_key(path), ""))

    def _on_path_edited(self) -> None:
        text = self.path_edit.text().strip()
        if text and text not in (self.controller.config.data.path, self._shown_path):
            self.open_path(text)

    def _on_path_entered(self) -> None:
        """Enter: a new path opens it; the same path reads it again."""
        text = self.path_edit.text().strip()
        if text and text in (self.controller.config.data.path, self._shown_path):
            self.reload()
        elif text:
            self.open_path(text)

    def _on_format(self, fmt: str) -> None:
        if fmt != self.controller.config.data.format:
            columns = self.controller.config.data.columns if fmt in ("auto", "alpaca") else ""
            self.controller.load_dataset(None, fmt, columns)

    def _show_format(self, fmt: str) -> None:
        self.format_combo.blockSignals(True)
        self.format_combo.setCurrentText(fmt)
        self.format_combo.blockSignals(False)

    def _watch(self, path: str) -> None:
        """Watch `path` for changes on disk (only that file)."""
        if self.watcher.files():
            self.watcher.removePaths(self.watcher.files())
        if path and Path(path).is_file():
            self.watcher.addPath(path)

    def _on_file_changed(self, path: str) -> None:
        if Path(path).is_file():
            self.watcher.addPath(path)  # an editor that saves by renaming drops the watch
            self.changed_label.setText("The file changed on disk. Reload it to see it as it is now?")
        else:
            self.changed_label.setText("The file was moved or deleted. Reload, or choose it again?")
        self.changed_notice.show()

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
        self._preview, self._failure, self._shown_path = preview, None, preview.path
        self._watch(preview.path)
        self.path_edit.setText(preview.path)
        if self.controller.config.data.format == "auto":
            self._show_format("auto")
        self.summary_label.setStyleSheet("")
        if preview.columns and len(preview.fields) > 2:  # a table with a choice of columns: offer it
            self.column_step.offer(preview.fields, columns_text(preview.columns))
        else:
            self.column_step.hide()
        max_length = self.controller.config.data.max_length
        self.histogram.set_lengths(preview.lengths, max_length)
        self.summary_label.setText(self.summary_text(preview, self.histogram.over_cut, self._fate()))
        self.rows_table.setRowCount(len(preview.rows))
        for r, row in enumerate(preview.rows):
            summary = row.summary()[:300]
            for c, value in enumerate([str(row.num_tokens), "yes" if row.truncated else "", summary]):
                item = QTableWidgetItem(value)
                item.setToolTip(row.text[:2000])
                self.rows_table.setItem(r, c, item)
        self.rows_table.setVerticalHeaderLabels([str(row.line) for row in preview.rows])
        self._show_problems(preview.problems)
        if preview.rows:
            self.rows_table.selectRow(0)
            self.show_row(0)
        else:
            self.row_view.setPlainText(preview.render_error or "No rows to show.")

    def show_failure(self, failure) -> None:
        """A file that cannot be used: clear the preview, say why (until a load succeeds), list every
        problem, and offer the column step when naming two columns would help."""
        self._preview, self._failure, self._shown_path = None, failure, failure.path
        self._watch(failure.path)
        self.rows_table.clearContents()
        self.rows_table.setRowCount(0)
        self.histogram.set_lengths([], self.controller.config.data.max_length)
        hint = f"<br>{html.escape(failure.hint)}" if failure.hint else ""
        self.summary_label.setStyleSheet(UNUSABLE_STYLE)
        self.summary_label.setText(
            f"<b>⚠ This file can't be used.</b> {html.escape(failure.message)}{hint}"
            "<br>Fix it and press Reload (F5), or choose another file."
        )
        self._show_problems(failure.problems)
        if len(failure.columns) >= 2:
            self.column_step.offer(failure.columns, self.controller.config.data.columns)
        else:
            self.column_step.hide()
        if failure.problems:
            self.side_tabs.setCurrentIndex(1)
            self.problems_table.selectRow(0)
            self.show_problem(0)
        else:
            self.row_view.setPlainText("Nothing to show: this file can't be used (see above).")

    def _show_problems(self, problems: list[tuple[int | None, str, str]]) -> None:
        self._problems = list(problems)
        self.problems_table.clearContents()
        self.problems_table.setRowCount(len(problems))
        for r, (line, field, message) in enumerate(problems):
            for c, value in enumerate(["" if line is None else str(line), field, message]):
                item = QTableWidgetItem(value)
                item.setToolTip(message)
                self.problems_table.setItem(r, c, item)
        self.side_tabs.setTabText(1, f"Problems ({len(problems)})")

    def show_problem(self, index: int) -> None:
        """Show a problem's line as the file holds it, with what is wrong."""
        if not (0 <= index < len(self._problems)):
            return
        line, field, message = self._problems[index]
        where = f"<b>{html.escape(field)}</b>: " if field else ""
        page = f"<p><b>Problem:</b> {where}{html.escape(message)}</p>"
        raw = raw_line(self._shown_path, line) if line else ""
        if raw:
            kind = (
                "Item"
                if Path(self._shown_path).suffix.lower() in (".json", ".parquet") and raw[:1] in "{["
                else "Line"
            )
            page = (
                f"<b>{kind} {line}</b> as it is in the file:<pre style='white-space: pre-wrap'>{html.escape(raw)}</pre>"
                + page
            )
        self.row_view.setHtml(page)

    def show_row(self, index: int) -> None:
        """Show one rendered row, trained-on segments highlighted."""
        if self._preview is None or not (0 <= index < len(self._preview.rows)):
            return
        row = self._preview.rows[index]
        self._shown_row = index
        raw = self.raw_check.isChecked()
        shown = (lambda segments: segments) if raw else readable
        page = _pre(shown(row.segments), TRAINED_STYLE)
        if row.kind == "pair":
            page = (
                "<b>✔ Chosen answer</b> (the model learns to prefer it):"
                + page
                + "<b>✘ Rejected answer</b> (the model learns to avoid it):"
                + _pre(shown(row.rejected), REJECTED_STYLE)
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
        if row.added_system:
            page = (
                "<p><i>The model's chat template adds a system message you did not write; the model is "
                f"trained with it in place:</i> “{html.escape(row.added_system)}”</p>" + page
            )
        self.row_view.setHtml(page)

    @staticmethod
    def summary_text(preview, over_cut: int, fate: str = "they will be cut") -> str:
        """One line about the file: format, usable rows, lengths, problems."""
        # The format's name, and what it means in words (what "Alpaca" or "ShareGPT" rows hold).
        words = FORMAT_USES.get(preview.format) or FORMAT_SETTING.choices.get(preview.format)
        text = (
            f"Format: <b>{preview.format}</b>{f' ({words})' if words else ''} — <b>{preview.usable_rows}</b> "
            f"of {preview.total_rows} rows usable"
        )
        if preview.stats:
            stats = preview.stats
            text += f" — tokens per example: median {stats.get('median', 0):.0f}, max {stats.get('max', 0)}"
            if preview.measured_rows < preview.usable_rows:
                text += f" (first {preview.measured_rows} rows)"
        if over_cut:
            text += f" — <b>{over_cut}</b> example(s) are longer than the max length: {fate}"
        if preview.columns and preview.columns.get("question") != "instruction":
            text += (
                f" — question: <b>{html.escape(preview.columns['question'])}</b>, "
                f"answer: <b>{html.escape(preview.columns['answer'])}</b>"
            )
        if preview.problems:
            text += f" — <b>{len(preview.problems)}</b> problem(s), see Problems"
        if preview.render_error:
            text += f"<br>{html.escape(preview.render_error)}"
        for note in preview.notes:
            text += f"<br>ℹ {html.escape(_without_path(note, preview.path))}"
        return text

    def update_cut(self) -> None:
        """Redraw the max-length line after the setting changed."""
        self.histogram.set_cut(self.controller.config.data.max_length)
        if self._preview is not None:
            self.summary_label.setText(
                self.summary_text(self._preview, self.histogram.over_cut, self._fate())
            )

    def _fate(self) -> str:
        """What training will do with rows longer than the max length ('Rows too long')."""
        data = self.controller.config.data
        return too_long_fate(data.too_long, data.max_length)


def _pre(segments: list[tuple[str, bool]], style: str) -> str:
    """Rendered text with its trained-on segments highlighted in `style`."""
    parts = [
        f'<span style="{style}">{html.escape(t)}</span>' if trained else html.escape(t)
        for t, trained in segments
    ]
    return f"<pre style='white-space: pre-wrap'>{''.join(parts)}</pre>"


def _file_key(path: str) -> str:
    """One name per file, however it was typed (the remembered columns are keyed by it)."""
    return str(Path(resolve_dataset_path(path)).expanduser().resolve())


def _without_path(note: str, path: str) -> str:
    """A note about `path` without its FILE: prefix (the tab shows the file already); FILE:LINE: reads
    "Line N:"."""
    if not note.startswith(path + ":"):
        return note
    rest = note[len(path) + 1 :]
    line, colon, after = rest.partition(":")
    return f"Line {line}:{after}" if colon and line.isdigit() else rest.lstrip()
