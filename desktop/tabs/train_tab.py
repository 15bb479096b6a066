"""The Train tab: method, preset and settings on the left; Start / Stop / Resume, progress, where the
run is saved (with a button to choose the folder), live plots and the log on the right.

Settings edit `controller.config`; runs go through `controller.training` (a TrainingSession), whose
signals feed the progress bar, the plots and the log.  A past run's plots can be redrawn from its
folder's metrics.jsonl.  Nothing here touches torch or TRL.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tunesmith.core.config import PPO_REFUSED, ConfigError, worded
from tunesmith.core.data.formats import FORMAT_HOLDS, METHOD_FORMAT, methods_for
from tunesmith.core.events import Failed, Finished, RunStarted, StepMetrics
from tunesmith.desktop.eval_panel import EvalDialog, has_trained_model
from tunesmith.desktop.logic.formatting import finished_line, progress_line
from tunesmith.desktop.logic.presets import (
    PRESETS,
    apply_preset,
    machine_limits,
    matching_preset,
)
from tunesmith.desktop.logic.run_estimate import estimate_for_config
from tunesmith.desktop.logic.run_history import RunHistory, read_run
from tunesmith.desktop.logic.settings_spec import setting_at, tooltip
from tunesmith.desktop.logic.unfinished_runs import ResumableRun
from tunesmith.desktop.widgets.longest_context_row import LongestContextRow
from tunesmith.desktop.widgets.run_folder import RunFolderRow
from tunesmith.desktop.widgets.run_plots import RunPlots
from tunesmith.desktop.widgets.settings_form import SettingsForm
from tunesmith.desktop.workers.training import form_name

CUSTOM = "Custom"
PRESET_TIP = (
    "Quick test: a few steps to check everything works.\nBalanced: a good first real run.\n"
    "Best quality: slower, learns more carefully."
)
METHOD = setting_at("train.method")
# What each method does and which data it needs, in the words of someone who has not read the papers.
METHOD_TIPS = {
    "sft": "Learns to answer like your examples. Data: conversations, instruction/answer pairs or text.",
    "dpo": "Learns to prefer the chosen answer over the rejected one of each pair, while staying close\n"
    "to the original model. Data: prompt, chosen and rejected answers.",
    "orpo": "Like DPO, learns from chosen/rejected pairs, but in one pass without a copy of the original\n"
    "model to compare with. Data: prompt, chosen and rejected answers.",
    "grpo": "Writes several answers to each prompt, scores them with your rewards, and learns from the\n"
    "better ones. Slow on a CPU (it writes text at every step). Data: prompts, optionally with answers.",
    "ppo": "Not offered: TRL, the library Tunesmith trains with, removed PPO in September 2026. Use GRPO\n"
    "with your reward model instead (Reward model (GRPO), in the advanced settings).",
}


def method_data_hint(method: str, data_format: str | None) -> str:
    """Why the chosen dataset does not suit `method`, in words; "" when it does (or is not known yet)."""
    if not data_format:
        return ""
    wanted = METHOD_FORMAT.get(method)
    if wanted is None and data_format in FORMAT_HOLDS:
        suits = " or ".join(other.upper() for other in methods_for(data_format))
        return (
            f"This dataset holds {FORMAT_HOLDS[data_format]}: train it with {suits}, or pick example "
            "conversations."
        )
    if wanted is not None and data_format != wanted:
        return (
            f"{method.upper()} learns from {FORMAT_HOLDS[wanted]}, but this dataset holds {data_format} data. "
            "Pick another file in the Dataset tab, or another method."
        )
    return ""


class TrainTab(QWidget):
    """Settings, run controls, progress, plots and log.

    Signals: sig_buttons() — Start, Stop, Resume or Open run folder changed whether it can be pressed
    (the window's Run menu follows); sig_open_folder(str) — show this run folder in a file manager.
    """

    sig_buttons = Signal()
    sig_open_folder = Signal(str)

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.session = controller.training
        self.method_combo = QComboBox()
        for row, (key, label) in enumerate(METHOD.choices.items()):
            self.method_combo.addItem(label, key)
            self.method_combo.setItemData(row, METHOD_TIPS.get(key, ""), Qt.ItemDataRole.ToolTipRole)
        self.method_combo.setToolTip(tooltip(METHOD))
        self.method_combo.setObjectName("train.method")
        self.method_hint = QLabel()
        self.method_hint.setObjectName("vramWarning")  # the app's red warning style
        self.method_hint.setWordWrap(True)
        self.method_hint.hide()
        self.estimate_label = QLabel()  # the run's steps and time, before Start
        self.estimate_label.setWordWrap(True)
        self.dataset_problem = ""  # why the chosen dataset cannot be trained on ("" when it can)
        self._last_rate: float | None = None  # tokens/s of the last run on this machine, for the estimate
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*PRESETS, CUSTOM])
        self.preset_combo.setToolTip(PRESET_TIP)
        self.form = SettingsForm()
        self.longest_row = LongestContextRow(controller, self.form)  # the max length's preset
        self.form.add_below("data.max_length", self.longest_row)
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.start_button.setToolTip("Start a new run with these settings (Ctrl+Return)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; a checkpoint is saved (Ctrl+.)")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the stopped run from its last checkpoint (Ctrl+R)")
        self.folder_button = QPushButton("Open run folder")
        self.folder_button.setToolTip("The run's folder: config, metrics, log, checkpoints, adapter")
        self.eval_button = QPushButton("Evaluate…")
        self.eval_button.setToolTip("Did it work? A report comparing the tuned model with the base model")
        self.eval_dialog: EvalDialog | None = None  # the last one opened, while it lives
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.status_label = QLabel("Ready. Press Start to train on the chosen dataset.")
        self.status_label.setWordWrap(True)
        # Room for two lines from the start, so a longer message does not take it from the plots.
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing())
        self.run_folder = RunFolderRow()
        self.plots = RunPlots()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setMinimumHeight(36)  # two lines; the plots need the height more on a laptop
        self.unusual_box: QMessageBox | None = None  # the "unusual settings" question while it is open
        self._build_layout()
        self._connect()
        self.load_from_config()
        self._update_buttons("idle")

    def _build_layout(self) -> None:
        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        top_form = QFormLayout()
        top_form.addRow("Method:", self.method_combo)
        top_form.addRow(self.method_hint)
        top_form.addRow("Preset:", self.preset_combo)
        top_form.addRow(self.estimate_label)
        settings_layout.addLayout(top_form)
        settings_layout.addWidget(self.form, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(settings)
        # Wide enough for the settings' own minimum, so no field's arrows are cut off (the column does
        # not scroll sideways); combo boxes shrink to a short text rather than widen the column.
        for combo in settings.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        scroll.setMinimumWidth(
            settings.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        )
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.eval_button)
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.plots)
        right_split.addWidget(self.log_view)
        right_split.setSizes([450, 150])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(3)  # the plots need the height more, on a laptop
        right_layout.addLayout(buttons)
        right_layout.addWidget(self.status_label)
        right_layout.addWidget(self.run_folder)
        right_layout.addWidget(right_split, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("trainSplitter")
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(right)
        self.splitter.setSizes([360, 800])
        QVBoxLayout(self).addWidget(self.splitter)

    def _connect(self) -> None:
        self.preset_combo.currentTextChanged.connect(self._on_preset)
        self.method_combo.currentIndexChanged.connect(self._on_method)
        self.form.sig_changed.connect(self._on_setting)
        self.controller.sig_dataset_state.connect(self._on_dataset_state)
        self.controller.sig_dataset.connect(lambda _preview: self.update_estimate())
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.folder_button.clicked.connect(self.open_run_folder)
        self.eval_button.clicked.connect(self.evaluate)
        self.controller.sig_config.connect(lambda _config: self.load_from_config())
        self.controller.sig_output_dir.connect(self.run_folder.show_folder)
        self.run_folder.sig_chosen.connect(self.controller.set_output_dir)
        self.controller.sig_hardware.connect(self._on_hardware)
        self.controller.sig_dataset.connect(lambda _preview: self._update_method_hint())
        s = self.session
        s.sig_state.connect(self._update_buttons)
        s.sig_started.connect(self._on_started)
        s.sig_step.connect(self._on_step)
        s.sig_eval.connect(self.plots.add_eval)
        s.sig_log.connect(self.append_log)
        s.sig_checkpoint.connect(
            lambda step, path: self.append_log("info", f"Checkpoint at step {step}: {path}")
        )
        s.sig_finished.connect(self._on_finished)
        s.sig_failed.connect(self._on_failed)
        s.sig_run_ended.connect(lambda: self._update_buttons(s.state))
        s.sig_run_ended.connect(lambda: self.run_folder.show_folder(self.controller.config.output_dir))

    # -- settings -------------------------------------------------------------------------------
    def load_from_config(self) -> None:
        """Show the controller's config in the form, preset and method fields."""
        config = self.controller.config
        self.form.load(config)
        if not self.session.is_running():
            self.run_folder.show_folder(config.output_dir)
        self.method_combo.blockSignals(True)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(config.train.method)))
        self.method_combo.blockSignals(False)
        self._sync_preset()
        self.form.set_method(config.train.method)
        self._update_method_hint()
        self.update_estimate()

    def _sync_preset(self) -> None:
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentText(matching_preset(self.controller.config) or CUSTOM)
        self.preset_combo.blockSignals(False)

    def _on_preset(self, name: str) -> None:
        if name in PRESETS:
            apply_preset(self.controller.config, name)
            self.form.load(self.controller.config)
            self.controller.config_changed()
            self.append_log("info", f"Preset '{name}' applied.")

    def _on_setting(self, path: str) -> None:
        self.form.store(self.controller.config, path)
        self._sync_preset()
        self.update_estimate()
        self.controller.config_changed()

    def _on_method(self) -> None:
        method = self.method_combo.currentData()
        self.controller.config.train.method = method
        self.form.set_method(method)
        self._update_method_hint()
        self.update_estimate()
        self.controller.config_changed()

    def _update_method_hint(self) -> None:
        dataset = self.controller.dataset
        method = self.controller.config.train.method
        hint = method_data_hint(method, getattr(dataset, "format", None))
        if method == "ppo":  # in the list so people learn why it is missing; Start refuses it too
            hint = worded(ConfigError(PPO_REFUSED, ("train.method",)), form_name)
        self.method_hint.setText(hint)
        self.method_hint.setVisible(bool(hint))

    def _on_hardware(self, hardware) -> None:
        self.form.apply_limits(machine_limits(hardware))
        self.form.show_gpu_choice(getattr(hardware, "gpu_count", 0))
        self.plots.set_memory_label(getattr(hardware, "device", "cpu") == "cuda")

    # -- run control ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start a new run (plots and log start over)."""
        if self.session.is_running():
            return
        if not self.confirm_unusual_settings():
            self.status_label.setText("Not started: change the settings, or confirm them with Start anyway.")
            return
        self.plots.clear()
        self.log_view.clear()
        self.progress.setValue(0)
        self.status_label.setText("Loading the model and preparing the data…")
        self._set_status_warning(False)
        if not self.controller.start_training():
            self.status_label.setText("Not started: see the message above.")

    def confirm_unusual_settings(self) -> bool:
        """Ask before a run whose settings are allowed but far from the usual (a learning rate of 0.5
        ruins a model in a few steps); True when there are none or the user starts anyway."""
        try:
            unusual = self.controller.config.validate().unusual()
        except ConfigError:
            return True  # the controller refuses it, naming the setting
        if not unusual:
            return True
        listed = "\n".join(f"• {worded(item, form_name)}" for item in unusual)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Unusual settings",
            f"These settings are far from what people normally use:\n\n{listed}\n\n"
            "A run with them may learn nothing, or make the model worse.",
            parent=self,
        )
        start = box.addButton("Start anyway", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(box.addButton("Change settings", QMessageBox.ButtonRole.RejectRole))
        self.unusual_box = box  # for tests, which answer it
        box.exec()
        self.unusual_box = None
        return box.clickedButton() is start

    def stop(self) -> None:
        """Stop the run after the current step (a checkpoint is saved)."""
        if self.session.is_running():
            self.status_label.setText("Stopping after this step and saving a checkpoint…")
            self.session.stop()

    def resume(self) -> None:
        """Resume the last stopped run; its points continue on the same plots."""
        if self.session.can_resume():
            self.status_label.setText("Resuming from the last checkpoint…")
            self.session.resume()

    def show_past_run(self, path: str) -> int:
        """Redraw a finished (or stopped) run's plots from its folder's metrics.jsonl; returns its steps.

        Only the plots and the status change; `take_up` also makes a stopped run the one Resume continues.
        """
        if self.session.is_running():
            return 0
        return self.show_history(read_run(path))

    def show_history(self, history: RunHistory) -> int:
        """Redraw the plots from a run's metrics already read; returns its steps."""
        if self.session.is_running():
            return 0
        self.plots.clear()
        for step in history.steps:
            self.plots.add_step(step)
        for evaluation in history.evals:
            self.plots.add_eval(evaluation)
        self.plots.flush()
        last = history.steps[-1] if history.steps else None
        self.progress.setRange(0, max(1, last.total_steps if last else 1))
        self.progress.setValue(last.step if last else 0)
        self.status_label.setText(
            f"Showing the run in {history.path.parent}: {len(history.steps)} step(s) logged."
        )
        return len(history.steps)

    def take_up(self, run: ResumableRun) -> None:
        """Make a run that stopped early (in an earlier session, or picked from the history) the one
        Resume continues: its plots are drawn, the status says where it stopped, Resume is enabled."""
        if run.history is not None:
            self.show_history(run.history)  # read once, to decide it can be resumed
        else:
            self.show_past_run(str(run.path))
        self.session.adopt(run)
        self.status_label.setText(f"{run.offer()} Press Resume to go on from there.")

    def open_run_folder(self) -> None:
        """Ask the window to show the run's folder (it says so when no file manager opens)."""
        if self.session.last_run_dir:
            self.sig_open_folder.emit(self.session.last_run_dir)

    def evaluate(self) -> None:
        """Open the evaluation dialog on the last run (it runs in the background, with Cancel)."""
        if has_trained_model(self.session.last_run_dir):
            self.eval_dialog = EvalDialog(self.session.last_run_dir, self)
            self.eval_dialog.open()

    def _update_buttons(self, state: str) -> None:
        running = state != "idle"
        self.start_button.setEnabled(not running and not self.dataset_problem)
        self.start_button.setToolTip(
            f"Fix the dataset first: {self.dataset_problem}"
            if self.dataset_problem
            else "Start a new run with these settings (Ctrl+Return)"
        )
        self.stop_button.setEnabled(state == "running")
        self.resume_button.setEnabled(not running and self.session.can_resume())
        self.folder_button.setEnabled(bool(self.session.last_run_dir))
        self.eval_button.setEnabled(not running and has_trained_model(self.session.last_run_dir))
        self.form.setEnabled(not running)
        self.preset_combo.setEnabled(not running)
        self.method_combo.setEnabled(not running)
        self.run_folder.change_button.setEnabled(not running)
        self.sig_buttons.emit()

    def _on_started(self, event: RunStarted) -> None:
        self.progress.setRange(0, max(1, event.total_steps))
        self.progress.setValue(event.resumed_from_step)
        resumed = event.resumed_from_step
        what = f"Resumed from step {resumed}" if resumed else "Training"
        # until step 1 ends (its progress line replaces this), say what makes it slower than the rest
        self.status_label.setText(f"{what} on {event.device} ({event.precision}). {event.first_step}".strip())
        self.append_log("info", f"Run folder: {event.run_dir}")
        if event.run_dir:
            self.run_folder.show_run(event.run_dir)
        self.folder_button.setEnabled(True)

    def _on_dataset_state(self, problem: str) -> None:
        """The dataset became usable ("") or not (why): Start follows it."""
        self.dataset_problem = problem
        self._update_buttons(self.session.state)
        if problem and not self.session.is_running():
            self.status_label.setText(f"Fix the dataset first (Dataset tab): {problem}")
        elif not self.session.is_running() and self.status_label.text().startswith("Fix the dataset"):
            self.status_label.setText("Ready. Press Start to train on the chosen dataset.")
        self.update_estimate()

    def update_estimate(self) -> None:
        """How many steps the settings make on the chosen dataset, and how long, before Start."""
        preview = self.controller.dataset
        if preview is None:
            self.estimate_label.setText("")
            return
        mean_tokens = (preview.stats or {}).get("mean")
        estimate = estimate_for_config(
            self.controller.config, preview.usable_rows, mean_tokens, self._last_rate
        )
        self.estimate_label.setText(estimate.text())

    def _on_step(self, step: StepMetrics) -> None:
        if step.tokens_per_second > 0:
            self._last_rate = step.tokens_per_second
        self.plots.add_step(step)
        self.progress.setMaximum(max(1, step.total_steps))
        self.progress.setValue(step.step)
        if self.session.state == "running":
            self.status_label.setText(progress_line(step))

    def _on_finished(self, event: Finished) -> None:
        self.plots.flush()
        self.status_label.setText(("⚠ " if event.problem else "") + finished_line(event))
        self._set_status_warning(bool(event.problem))
        self.append_log("warning" if event.problem else "info", finished_line(event))

    def _set_status_warning(self, warning: bool) -> None:
        """The status line in the app's red warning style while it reports a run that did not work."""
        self.status_label.setObjectName("vramWarning" if warning else "")
        self.status_label.style().unpolish(self.status_label)
        self.status_label.style().polish(self.status_label)

    def _on_failed(self, event: Failed) -> None:
        self.plots.flush()
        self.status_label.setText(f"Failed: {event.message} {event.hint}")
        self.append_log("error", f"{event.message} {event.hint}")

    def append_log(self, level: str, message: str) -> None:
        """Add a line to the log pane."""
        prefix = {"warning": "⚠ ", "error": "✖ "}.get(level, "")
        self.log_view.appendPlainText(prefix + message)
