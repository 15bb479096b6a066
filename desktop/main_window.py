"""The main window: banner, first-start welcome, model panel, the Dataset / Train / Chat tabs, menus
with shortcuts, the export action, settings that persist, and a close that never loses a run and
never hangs: it asks the run to stop (a checkpoint is saved) and closes when the run has ended or
after a few seconds, whichever is first (at once while the model still loads); `desktop.shutdown`
lets the stop finish after that.

It wires the tabs to the one controller and remembers layout and settings between launches.  Engine
work starts only after the window is shown (hardware detection imports torch in the background); the
welcome (what this machine can train) appears then, on the first start and from the Help menu.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSize, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tunesmith.core.config import RunConfig
from tunesmith.core.events import Failed
from tunesmith.desktop import persistence
from tunesmith.desktop.controller import Controller
from tunesmith.desktop.export_dialog import ExportDialog
from tunesmith.desktop.logic.engines import export_choices
from tunesmith.desktop.logic.formatting import export_title, friendly_path
from tunesmith.desktop.logic.presets import apply_preset
from tunesmith.desktop.logic.unfinished_runs import ResumableRun, newest_resumable, resumable
from tunesmith.desktop.past_runs_dialog import PastRunsDialog
from tunesmith.desktop.tabs.chat_tab import ChatTab
from tunesmith.desktop.tabs.dataset_tab import DatasetTab
from tunesmith.desktop.tabs.train_tab import TrainTab
from tunesmith.desktop.theme import app_icon
from tunesmith.desktop.widgets.banner import Banner
from tunesmith.desktop.widgets.model_panel import ModelPanel
from tunesmith.desktop.widgets.resume_offer import ResumeOffer
from tunesmith.desktop.widgets.welcome_panel import WelcomePanel
from tunesmith.desktop.workers.background import run_in_background

log = logging.getLogger(__name__)
FIRST_PRESET = "Quick test"
# The window's smallest size (every control still whole and usable) and its first-launch size.
MINIMUM_SIZE = QSize(960, 620)
FIRST_SIZE = QSize(1200, 760)
# How long a close waits for a stopping run before the window goes anyway (a model load or a GRPO
# rollout step cannot be cut short; the process finishes the stop after the window, see shutdown.py).
CLOSE_WAIT_MS = 3000


class MainWindow(QMainWindow):
    """The app's one window.  `start_engine_work()` runs once, right after the first show."""

    def __init__(self, controller: Controller | None = None, settings=None):
        super().__init__()
        self.settings = settings or persistence.make_settings()
        remembered = persistence.load_config(self.settings)
        if controller is None and remembered is None:  # first launch: a run that finishes in minutes
            remembered = RunConfig()
            apply_preset(remembered, FIRST_PRESET)
        if controller is None:  # runs go to the user's folder, not wherever the app was started from
            remembered.output_dir = str(persistence.runs_dir(self.settings))
        self.controller = controller or Controller(remembered)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Tunesmith — fine-tune a language model on your own data")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(MINIMUM_SIZE)  # below it labels and plots would be cut, not just smaller
        self.banner = Banner()
        self.resume_offer = ResumeOffer()
        self.welcome = WelcomePanel()
        self.model_panel = ModelPanel(self.controller)
        self.dataset_tab = DatasetTab(self.controller)
        self.train_tab = TrainTab(self.controller)
        self.chat_tab = ChatTab(self.controller)
        self.tabs = TabsWithoutHeightForWidth()
        self.tabs.addTab(self.dataset_tab, "1  Dataset")
        self.tabs.addTab(self.train_tab, "2  Train")
        self.tabs.addTab(self.chat_tab, "3  Chat")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 4, 6, 4)  # tight: on a 700-pixel laptop every line counts
        layout.setSpacing(4)
        layout.addWidget(self.banner)
        layout.addWidget(self.resume_offer)
        layout.addWidget(self.welcome)
        layout.addWidget(self.model_panel)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.busy_label = QLabel()
        self.statusBar().addPermanentWidget(self.busy_label)
        self.actions: dict[str, QAction] = {}
        self._build_menus()
        self._connect()
        self._close_after_run = False
        self.past_runs_dialog: PastRunsDialog | None = None  # while Run > Past runs is open
        self._started = False
        self.autostart = True  # start hardware detection and the dataset preview once shown
        self.welcome_on_first_start = True  # off for --screenshots: the README shows the tabs
        self.restore_layout()

    # -- construction ---------------------------------------------------------------------------
    def _action(self, name: str, text: str, shortcut, slot, menu) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        self.actions[name] = action
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action("open", "&Open dataset…", QKeySequence.StandardKey.Open, self._open_dataset, file_menu)
        self._action("export", "&Export model…", "Ctrl+E", self.export, file_menu)
        file_menu.addSeparator()
        self._action("quit", "&Quit", QKeySequence.StandardKey.Quit, self.close, file_menu)
        run_menu = bar.addMenu("&Run")
        self._action("start", "&Start training", "Ctrl+Return", self._primary, run_menu)
        self._action("stop", "S&top (keeps a checkpoint)", "Ctrl+.", self.train_tab.stop, run_menu)
        self._action("resume", "&Resume", "Ctrl+R", self.train_tab.resume, run_menu)
        self._action("folder", "Open run &folder", "Ctrl+Shift+O", self.train_tab.open_run_folder, run_menu)
        self._sync_run_actions()
        self._action("past_run", "&Past runs…", "Ctrl+H", self._choose_past_run, run_menu)
        view_menu = bar.addMenu("&View")
        for index, name in enumerate(("Dataset", "Train", "Chat")):
            self._action(
                f"tab{index}",
                f"&{name}",
                f"Ctrl+{index + 1}",
                lambda _checked=False, i=index: self.tabs.setCurrentIndex(i),
                view_menu,
            )
        chat_menu = bar.addMenu("&Chat")
        self._action("send", "&Send message (Ctrl+Return in the Chat tab)", "", self.chat_tab.send, chat_menu)
        self._action("stop_chat", "Stop &answer", "Esc", self.controller.chat.stop, chat_menu)
        self._action("clear_chat", "&Clear conversation", "Ctrl+L", self.chat_tab.clear, chat_menu)
        help_menu = bar.addMenu("&Help")
        self._action("welcome", "&Welcome / what can this machine train", "", self.show_welcome, help_menu)
        self._action("about", "&About Tunesmith", "F1", self._about, help_menu)

    def _connect(self) -> None:
        c = self.controller
        c.sig_error.connect(lambda message, hint, details: self.banner.show_message(message, hint, details))
        c.sig_info.connect(lambda text: self.statusBar().showMessage(text, 5000))
        c.sig_busy.connect(self.busy_label.setText)
        c.sig_export_done.connect(self._on_exported)
        c.sig_export_progress.connect(self._on_export_progress)  # in the banner, whatever the tab
        c.sig_config.connect(lambda _config: self.dataset_tab.update_cut())
        c.training.sig_failed.connect(self._on_run_failed)
        c.training.sig_started.connect(lambda _data: self.banner.hide())
        c.training.sig_state.connect(self._on_run_state)
        c.training.sig_run_ended.connect(self._maybe_close_after_run)
        self.train_tab.form.sig_changed.connect(self._on_setting_changed)
        self.train_tab.sig_buttons.connect(self._sync_run_actions)
        self.tabs.currentChanged.connect(lambda _index: self._sync_run_actions())
        self.train_tab.sig_open_folder.connect(self.open_folder)
        c.sig_capabilities.connect(self.welcome.set_capabilities)
        c.sig_output_dir.connect(lambda folder: persistence.set_runs_dir(self.settings, folder))
        self.welcome.sig_dismissed.connect(lambda: persistence.set_welcome_seen(self.settings))
        self.resume_offer.sig_resume.connect(self.resume_run)
        self.chat_tab.feedback.sig_train.connect(self.train_on_feedback)
        self.resume_offer.sig_discard.connect(lambda run: persistence.decline_run(self.settings, run.path))

    # -- start-up -------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._started and self.autostart:
            self._started = True
            QTimer.singleShot(0, self.start_engine_work)

    def start_engine_work(self) -> None:
        """Detect the hardware and read the chosen dataset, in the background."""
        self.controller.detect_hardware()
        self.controller.load_dataset()
        self.look_for_unfinished_run()
        if self.welcome_on_first_start and not persistence.welcome_seen(self.settings):
            self.show_welcome()

    def look_for_unfinished_run(self) -> None:
        """In the background: the newest run of the runs folder that stopped before its end and was not
        turned down; when there is one, offer to resume it."""
        folder, declined = self.controller.config.output_dir, persistence.declined_runs(self.settings)
        run_in_background(lambda: newest_resumable(folder, declined), self._offer_resume)

    def _offer_resume(self, run: ResumableRun | None) -> None:
        if run is not None and not self.controller.training.is_running():
            self.resume_offer.offer(run)

    def resume_run(self, run: ResumableRun) -> None:
        """Go on with a run stopped earlier: its plots in the Train tab, then Resume."""
        if self.controller.training.is_running():
            return
        self.tabs.setCurrentWidget(self.train_tab)
        self.train_tab.take_up(run)
        self.train_tab.resume()

    def train_on_feedback(self, run_dir: str, method: str) -> None:
        """The Chat tab's "Train on my feedback": the Train tab, ready to start a run on the pairs."""
        self.controller.train_on_feedback(run_dir, method)
        self.tabs.setCurrentWidget(self.train_tab)

    def show_welcome(self) -> None:
        """Show what this machine can train (the facts arrive from a background check)."""
        if self.controller.capabilities is None:
            self.welcome.show_checking()
        self.welcome.show()
        self.controller.describe_machine()

    # -- actions --------------------------------------------------------------------------------
    def _open_dataset(self) -> None:
        self.tabs.setCurrentWidget(self.dataset_tab)
        self.dataset_tab.choose_file()

    def _choose_past_run(self) -> None:
        """The Past runs list (date, method, dataset, steps, how each ended); the chosen one is shown."""
        dialog = PastRunsDialog(self.controller.config.output_dir, self)
        self.past_runs_dialog = dialog  # for tests, which answer it
        dialog.exec()
        self.past_runs_dialog = None
        if dialog.chosen and dialog.chat:
            self.tabs.setCurrentWidget(self.chat_tab)
            self.chat_tab.use_run(dialog.chosen)
        elif dialog.chosen:
            self.show_past_run(dialog.chosen)

    def show_past_run(self, folder: str) -> None:
        """Redraw a run folder's plots in the Train tab (a banner says so when it has no metrics)."""
        try:
            run = resumable(folder)
            if run is not None and not self.controller.training.is_running():
                self.train_tab.take_up(run)  # a run stopped early: Resume goes on with it
            else:
                self.train_tab.show_past_run(folder)
        except (OSError, UnicodeDecodeError) as exc:
            self.banner.show_message(
                "This folder holds no training metrics.",
                "Choose a run folder: the one with config.yaml and metrics.jsonl in it.",
                str(exc),
                level="warning",
            )
            return
        self.tabs.setCurrentWidget(self.train_tab)

    def _primary(self) -> None:
        """Ctrl+Return: send the message in the Chat tab, start training elsewhere."""
        if self.tabs.currentWidget() is self.chat_tab:
            self.chat_tab.send()
            return
        self.tabs.setCurrentWidget(self.train_tab)
        self.train_tab.start()

    def _on_setting_changed(self, path: str) -> None:
        if path in ("data.max_length", "data.too_long"):  # the Dataset tab says what happens to long rows
            self.dataset_tab.update_cut()
        if path in ("data.max_length", "data.assistant_only_loss"):
            QTimer.singleShot(0, self.controller.load_dataset)

    def _sync_run_actions(self) -> None:
        """The Run menu's items can be chosen exactly when the Train tab's buttons can be pressed.

        Start's item carries Ctrl+Return, which sends the message in the Chat tab: it stays available
        while the Chat tab shows, and follows the Start button everywhere else."""
        train = self.train_tab
        buttons = {"stop": train.stop_button, "resume": train.resume_button, "folder": train.folder_button}
        for name, button in buttons.items():
            self.actions[name].setEnabled(button.isEnabled())
        in_chat = self.tabs.currentWidget() is self.chat_tab
        self.actions["start"].setEnabled(train.start_button.isEnabled() or in_chat)

    def _on_run_state(self, state: str) -> None:
        running = state != "idle"
        self.actions["past_run"].setEnabled(not running)  # the live run owns the plots
        self.model_panel.setEnabled(not running)

    def _on_run_failed(self, event: Failed) -> None:
        self.banner.show_message(event.message or "Training failed.", event.hint, event.details)

    def export(self) -> None:
        """Ask how to export the last run, then export it in the background."""
        run_dir = self.controller.training.last_run_dir
        if not run_dir:
            self.banner.show_message(
                "There is no trained model to export yet.", "Train one in the Train tab.", level="info"
            )
            return
        dialog = ExportDialog(run_dir, *export_choices(), self)
        if dialog.exec():
            self.controller.export(*dialog.choice())

    def _on_export_progress(self, what: str, fraction: float, step: str) -> None:
        self.banner.show_progress(f"Exporting the {what}…", fraction, step)

    def _on_exported(self, result) -> None:
        """Where the export is (Open folder, Copy path) and what its check found, in words."""
        path = Path(result.path)
        folder = path if path.is_dir() else path.parent
        hint = f"Saved as {friendly_path(path)}."
        if result.check is not None:
            hint += f" Check: {result.check.verdict()}."
        if result.unverified:
            hint += " Not checked: llama.cpp could not run the check (Details says why)."
        action = (
            ("Chat with this model", lambda: self.chat_with_export(result))
            if result.fmt.startswith("gguf")
            else None
        )
        self.banner.show_message(
            f"Export finished: {export_title(result.fmt, result.quant)}.",
            hint,
            details=result.summary(),
            level="info",
            action=action,
            buttons=[
                ("Open folder", lambda: self.open_folder(folder)),
                ("Copy path", lambda: self.copy_path(path)),
            ],
        )

    def open_folder(self, folder: str | Path) -> bool:
        """Show `folder` in the system's file manager; when none can be opened, the banner says so and
        offers its path to copy."""
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            return True
        log.warning("no file manager could open %s", folder)
        self.banner.show_message(
            "No file manager could be opened on this system.",
            f"The folder is {folder}. Copy its path and open it in your file manager or a terminal.",
            level="warning",
            buttons=[("Copy path", lambda: self.copy_path(folder))],
        )
        return False

    def copy_path(self, path: str | Path) -> None:
        """Put `path` on the clipboard and say so on the banner's button."""
        QGuiApplication.clipboard().setText(str(path))
        button = self.banner.button("Copy path")
        if button is not None:
            button.setText("Path copied ✓")
        self.statusBar().showMessage(f"Copied {path}", 5000)

    def chat_with_export(self, result) -> None:
        """The export banner's "Chat with this model": the Chat tab opens on the exported GGUF."""
        if self.chat_tab.offer_export(result):
            self.tabs.setCurrentWidget(self.chat_tab)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About Tunesmith",
            "<b>Tunesmith</b><br>Fine-tune an open language model on "
            "your own data, on your own computer, and chat with the result.",
        )

    # -- closing and persistence ----------------------------------------------------------------
    def confirm_stop_on_close(self) -> bool:
        """Ask whether to stop the running training to quit (tests replace this)."""
        answer = QMessageBox.question(
            self,
            "Training is running",
            "A training run is still going. Stop it and quit?\nA checkpoint is saved, so you can resume later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        training = self.controller.training
        if training.is_running() and not self._close_after_run:
            if not self.confirm_stop_on_close():
                event.ignore()
                return
            self._close_after_run = True
            training.stop()
            if training.training_started:  # a step is under way: let it end and save, for a moment
                self.busy_label.setText("Stopping the run and saving a checkpoint…")
                # Closes when the run has ended (sig_run_ended) or after CLOSE_WAIT_MS, whichever is first.
                QTimer.singleShot(CLOSE_WAIT_MS, self.close)
                event.ignore()
                return
            # Still loading: nothing to save yet, so the window goes at once (the load ends on its own).
        self.controller.chat.stop()  # the chat thread ends after its current piece; shutdown.py waits
        self.save_layout()
        super().closeEvent(event)

    def _maybe_close_after_run(self) -> None:
        if self._close_after_run and self.isVisible():
            QTimer.singleShot(0, self.close)

    def save_layout(self) -> None:
        """Remember geometry, splitters, tab, settings and the chat knobs."""
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        s.setValue("window/advanced", self.train_tab.form.advanced_toggle.isChecked())
        persistence.save_splitters(s, self)
        persistence.save_config(s, self.controller.config)
        persistence.save_values(s, "chat/settings", self.chat_tab.settings_values())
        s.sync()

    def restore_layout(self) -> None:
        """Restore what `save_layout` remembered (first launch: a sensible size)."""
        s = self.settings
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(_first_size(self.screen()))
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(s.value("window/tab", 0)))
        self.train_tab.form.set_advanced_visible(str(s.value("window/advanced", "false")).lower() == "true")
        persistence.restore_splitters(s, self)
        self.chat_tab.restore_values(persistence.load_values(s, "chat/settings"))


def _first_size(screen) -> QSize:
    """The first launch's window size: roomy, but never taller or wider than the screen's free area
    (a 1366x768 laptop has about 1366x728 once the task bar is there)."""
    free = screen.availableGeometry() if screen is not None else None
    if free is None or free.isEmpty():
        return FIRST_SIZE
    return QSize(
        max(MINIMUM_SIZE.width(), min(FIRST_SIZE.width(), free.width() - 40)),
        max(MINIMUM_SIZE.height(), min(FIRST_SIZE.height(), free.height() - 40)),
    )


class TabsWithoutHeightForWidth(QTabWidget):
    """The tabs, sized by their minimum and preferred heights only.

    A wrapped label on any page makes a QTabWidget report a height-for-width, which the window's
    layout then honours before the minimum heights of the panels above it: on a 700-pixel screen
    the model panel was squeezed until its buttons were cut.  The pages scroll or wrap within
    whatever height the tabs get.
    """

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return False
