"""The Dataset tab's Import wizard: chat exports or documents -> a new dataset file, shown in the tab.

Four pages: the files and their source (guessed from the files; a file of another kind is named at once,
with the source that reads it), the options (who is "me" among the speakers found, privacy scrubbing - on
by default here -, names to hide, the silence that starts a new conversation, group names, a table's
columns), where to write (a new file beside the runs folder, never an existing one), and the import with
its summary.  Reading and writing run on background jobs; the decisions are desktop.logic.import_plan's.
Finishing emits `sig_imported(path)`, which the tab opens like any dataset.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from tunesmith.core.data.importers import SOURCES, ImportOptions
from tunesmith.desktop.logic import import_plan
from tunesmith.desktop.workers.background import run_in_background

PROBLEM_STYLE = "QLabel { background-color: rgba(214, 39, 40, 0.18); padding: 6px; }"
FILE_FILTER = "Chat exports and documents (*.txt *.zip *.json *.csv *.tsv *.pdf *.docx *.md);;All files (*)"
NO_TIME = "(no time column)"


class ImportWizard(QWizard):
    """sig_imported(str): the new dataset file, written and ready to open."""

    sig_imported = Signal(str)

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Import chats or documents")
        self.scan = import_plan.FilesScan()
        self.written: Path | None = None
        self.files_page, self.options_page = FilesPage(self), OptionsPage(self)
        self.output_page, self.run_page = OutputPage(self), RunPage(self)
        for page in (self.files_page, self.options_page, self.output_page, self.run_page):
            self.addPage(page)
        self.accepted.connect(lambda: self.written and self.sig_imported.emit(str(self.written)))
        # The wizard's jobs run on a pool of their own: a scan the person waits for must not queue behind
        # the app's start-up jobs (model and tokenizer loading) on Qt's global pool.  One thread: one
        # import at a time, and scans are short.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)

    def in_background(self, op, on_success, on_failure) -> None:
        run_in_background(op, on_success, on_failure, pool=self.pool)

    @property
    def source(self) -> str:
        return str(self.files_page.source_combo.currentData() or "")

    @property
    def files(self) -> list[str]:
        return list(self.files_page.files)


class FilesPage(QWizardPage):
    """Which files, and which source reads them (guessed; a wrong file is named with the right source)."""

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self.wiz, self.files, self._request = wizard, [], 0
        self.setTitle("Your files")
        self.setSubTitle(
            "Chat exports (WhatsApp, Telegram, Discord, a table) or documents (PDF, Word, text)."
        )
        self.file_list = QListWidget()
        add, clear = QPushButton("Add files…"), QPushButton("Clear")
        add.clicked.connect(self._choose)
        clear.clicked.connect(lambda: self.set_files([]))
        self.source_combo = QComboBox()
        for source in SOURCES:
            self.source_combo.addItem(import_plan.source_label(source), source)
        self.source_combo.setCurrentIndex(-1)
        self.source_combo.currentIndexChanged.connect(lambda _index: self._scan())
        self.status = QLabel("Add the files to import.")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(clear)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.file_list, 1)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("What they are:"))
        layout.addWidget(self.source_combo)
        layout.addWidget(self.status)

    def _choose(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Files to import", "", FILE_FILTER)
        if paths:
            self.set_files(self.files + [p for p in paths if p not in self.files])

    def set_files(self, paths: list[str]) -> None:
        """Show the files and guess their source from their first bytes (the person may change it)."""
        self.files = [str(p) for p in paths]
        self.file_list.clear()
        self.file_list.addItems(self.files)
        guess = import_plan.guess_source(self.files) if self.files else None
        self.source_combo.blockSignals(True)
        if guess is not None:
            self.source_combo.setCurrentIndex(self.source_combo.findData(guess))
        self.source_combo.blockSignals(False)
        self._scan()

    def _scan(self) -> None:
        """Read the files as the chosen source in the background: speakers, or why they do not fit."""
        self._request += 1
        self.wiz.scan = import_plan.FilesScan(problem="Reading the files…")
        source, files, request = self.wiz.source, list(self.files), self._request
        self.completeChanged.emit()
        if not files or not source:
            self._show("" if files else "Add the files to import.", "Choose what the files are.")
            return
        self.status.setText("Reading the files…")
        self.status.setStyleSheet("")
        self.wiz.in_background(
            lambda: import_plan.scan_files(source, files),
            lambda scan: self._scanned(request, scan),
            lambda error: self._scanned(request, import_plan.FilesScan(problem=str(error))),
        )

    def _scanned(self, request: int, scan: import_plan.FilesScan) -> None:
        if request != self._request:
            return  # the files or the source changed meanwhile
        self.wiz.scan = scan
        speakers = f" Speakers: {', '.join(scan.speakers)}." if scan.speakers else ""
        self._show(scan.problem, f"Ready to import as {self.wiz.source}.{speakers}")
        self.completeChanged.emit()

    def _show(self, problem: str, fine: str) -> None:
        self.status.setText(problem or fine)
        self.status.setStyleSheet(PROBLEM_STYLE if problem else "")

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        return bool(self.files and self.wiz.source and not self.wiz.scan.problem)


class OptionsPage(QWizardPage):
    """Who is "me", privacy, conversation gaps, group names, a table's columns; for documents, the size."""

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self.wiz, self._request = wizard, 0
        self.setTitle("Options")
        defaults = ImportOptions()
        self.me_combo = QComboBox()
        self.me_combo.setToolTip("Your messages become the answers the model learns to give.")
        self.me_combo.currentIndexChanged.connect(lambda _index: self.completeChanged.emit())
        self.scrub_check = QCheckBox("Replace e-mail addresses, phone numbers, URLs, IBANs and card numbers")
        self.scrub_check.setChecked(True)
        self.names_edit = QLineEdit()
        self.names_edit.setPlaceholderText("Names to hide, separated by commas")
        self.gap_spin = QSpinBox()
        self.gap_spin.setRange(1, 7 * 24 * 60)
        self.gap_spin.setSuffix(" minutes")
        self.gap_spin.setValue(int(defaults.gap_minutes))
        self.gap_spin.setToolTip("A silence this long starts a new conversation.")
        self.group_combo = QComboBox()
        self.group_combo.addItem("Keep each speaker's name before their words", "keep")
        self.group_combo.addItem("Drop the names (only the words)", "drop")
        self.column_combos = {role: QComboBox() for role in import_plan.CSV_ROLES}
        for combo in self.column_combos.values():
            combo.currentIndexChanged.connect(lambda _index: self._rescan())
        self.docs_note = QLabel()
        self.docs_note.setWordWrap(True)
        self.form = QFormLayout(self)
        self.form.addRow("You are:", self.me_combo)
        for role, combo in self.column_combos.items():
            self.form.addRow(f"{role.capitalize()} column:", combo)
        self.form.addRow("Privacy:", self.scrub_check)
        self.form.addRow("Also hide:", self.names_edit)
        self.form.addRow("New conversation after:", self.gap_spin)
        self.form.addRow("Group chats:", self.group_combo)
        self.form.addRow(self.docs_note)

    def initializePage(self) -> None:  # noqa: N802 - Qt override
        source, scan = self.wiz.source, self.wiz.scan
        chats = source != "docs"
        for widget in (self.me_combo, self.gap_spin, self.group_combo):
            self.form.setRowVisible(widget, chats)
        for combo in self.column_combos.values():
            self.form.setRowVisible(combo, source == "csv")
        self._fill_speakers(scan.speakers)
        if source == "csv":
            self._fill_columns(scan.columns)
            if not scan.speakers:  # columns not named as usual: read the speakers with the ones shown
                self._rescan()
        config = self.wiz.controller.config
        self.docs_note.setVisible(not chats)
        self.docs_note.setText(
            f"Documents become plain-text chunks of whole paragraphs, each at most "
            f"{config.data.max_length - 1} tokens of {config.model.source} (the max length set for training)."
        )

    def _fill_speakers(self, speakers: dict[str, int]) -> None:
        self.me_combo.clear()
        for name, count in speakers.items():
            self.me_combo.addItem(f"{name} ({count} messages)", name)
        self.me_combo.setCurrentIndex(-1)  # the person says who they are; no guess
        self.completeChanged.emit()

    def _fill_columns(self, header: list[str]) -> None:
        guessed = import_plan.offered_csv_columns(header)
        for role, combo in self.column_combos.items():
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(([NO_TIME] if role == "time" else []) + header)
            combo.setCurrentText(guessed[role] or (NO_TIME if role == "time" else ""))
            combo.blockSignals(False)

    def csv_columns(self) -> dict[str, str] | None:
        if self.wiz.source != "csv":
            return None
        chosen = {role: combo.currentText() for role, combo in self.column_combos.items()}
        return {role: name for role, name in chosen.items() if name and name != NO_TIME}

    def _rescan(self) -> None:
        """A table's speakers depend on which column is the author: read them again."""
        self._request += 1
        request, files, columns = self._request, self.wiz.files, self.csv_columns()
        self._fill_speakers({})

        def done(scan: import_plan.FilesScan) -> None:
            if request == self._request:
                self._fill_speakers(scan.speakers)

        self.wiz.in_background(
            lambda: import_plan.scan_files("csv", files, columns), done, lambda _error: None
        )

    def options(self) -> ImportOptions:
        names = tuple(name.strip() for name in self.names_edit.text().split(",") if name.strip())
        return ImportOptions(
            me=self.me_combo.currentData(),
            scrub=self.scrub_check.isChecked() or bool(names),
            scrub_names=names,
            gap_minutes=float(self.gap_spin.value()),
            group_names="drop" if self.group_combo.currentData() == "drop" else "keep",
            csv_columns=self.csv_columns(),
            max_tokens=self.wiz.controller.config.data.max_length - 1,  # the engine adds end-of-text
        )

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        return self.wiz.source == "docs" or self.me_combo.currentData() is not None


class OutputPage(QWizardPage):
    """Where the new dataset goes: offered beside the runs folder; any existing file is refused."""

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Where to write the new dataset")
        self.path_edit = QLineEdit()
        self.path_edit.textChanged.connect(lambda _text: self._check())
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose)
        self.status = QLabel()
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(choose)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)

    def initializePage(self) -> None:  # noqa: N802 - Qt override
        runs = self.wiz.controller.config.output_dir
        self.path_edit.setText(str(import_plan.default_output(runs, self.wiz.source, self.wiz.files)))

    def _choose(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "New dataset file",
            self.path_edit.text(),
            "JSON lines (*.jsonl)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # an existing file is refused, not replaced
        )
        if path:
            self.path_edit.setText(path if path.lower().endswith(".jsonl") else f"{path}.jsonl")

    def _check(self) -> None:
        problem = import_plan.output_problem(self.path_edit.text(), self.wiz.files)
        self.status.setText(problem or "A new file; nothing is overwritten.")
        self.status.setStyleSheet(PROBLEM_STYLE if problem else "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        return not import_plan.output_problem(self.path_edit.text(), self.wiz.files)


class RunPage(QWizardPage):
    """Runs the import in the background and shows its summary; Finish opens the new file."""

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self.wiz, self._done = wizard, False
        self.setTitle("Importing")
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        QVBoxLayout(self).addWidget(self.summary)

    def initializePage(self) -> None:  # noqa: N802 - Qt override
        self._done, self.wiz.written = False, None
        self.summary.setPlainText("Importing…")
        source, files = self.wiz.source, self.wiz.files
        options = self.wiz.options_page.options()
        out = self.wiz.output_page.path_edit.text()
        model = self.wiz.controller.config.model.source
        self.wiz.in_background(
            lambda: import_plan.run_import(
                source, files, options, out, lambda: import_plan.model_token_counter(model)
            ),
            self._imported,
            lambda error: self.summary.setPlainText(f"Nothing was written.\n\n{error}"),
        )

    def _imported(self, done: import_plan.ImportDone) -> None:
        self.wiz.written, self._done = done.written, True
        self.summary.setPlainText(f"{done.summary()}\nPress Finish to open it in the Dataset tab.")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        return self._done
