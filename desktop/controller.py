"""The one object through which the app talks to the engine (tunesmith.core).

Tabs and panels never import the engine: they call the controller and listen to its signals.  The
controller holds the run configuration being edited, the detected hardware, the VRAM estimate, and the
training and chat sessions; everything that may take more than a moment runs off the GUI thread
(`run_in_background`, or the sessions' QThread workers).  Every background job first waits for the
heavy libraries (`core.heavy_imports`): the first job imports them, once, and no two threads ever import
transformers for the first time together.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from tunesmith.core.config import RunConfig
from tunesmith.core.events import Finished
from tunesmith.core.free_memory import free_memory
from tunesmith.core.heavy_imports import import_heavy
from tunesmith.desktop.chat_session import ChatSession
from tunesmith.desktop.logic import engines
from tunesmith.desktop.logic.chat_models import load_run_model
from tunesmith.desktop.logic.dataset_preview import build_preview, describe_failure
from tunesmith.desktop.logic.formatting import export_title
from tunesmith.desktop.training_session import TrainingSession
from tunesmith.desktop.workers.background import run_in_background

log = logging.getLogger(__name__)


class Controller(QObject):
    """Signals:
    sig_hardware(object):        the engine's HardwareInfo (None if detection failed)
    sig_vram(object):            the engine's VramEstimate, or None when it cannot be estimated yet
    sig_vram_text(str):          a line for the model panel when no estimate is available
    sig_config(object):          the config was replaced (e.g. restored); editors reload from it
    sig_dataset(object):         a DatasetPreview for the chosen file
    sig_dataset_busy(bool):      reading/rendering a dataset
    sig_dataset_failed(object):  a DatasetFailure: the chosen file cannot be used (reason, problems, columns)
    sig_dataset_state(str):      "" when the dataset can be trained on, else why not (for the Train tab)
    sig_error(str, str, str):    message, hint, details: shown as a banner
    sig_info(str):               a short status-bar message
    sig_tuned_available(bool):   a trained model is ready to chat with
    sig_export_done(object):     the engine's ExportResult
    sig_export_progress(str, float, str): what is exported (in words), the fraction done, the current step
    sig_busy(str):               a short job is running ("" when none)
    sig_capabilities(object):    the engine's Capabilities (what this machine can train), None if unknown
    sig_output_dir(str):         the folder new runs are created in changed
    """

    sig_hardware = Signal(object)
    sig_vram = Signal(object)
    sig_vram_text = Signal(str)
    sig_config = Signal(object)
    sig_dataset = Signal(object)
    sig_dataset_busy = Signal(bool)
    sig_dataset_failed = Signal(object)
    sig_dataset_state = Signal(str)
    sig_error = Signal(str, str, str)
    sig_info = Signal(str)
    sig_tuned_available = Signal(bool)
    sig_export_done = Signal(object)
    sig_export_progress = Signal(str, float, str)
    sig_busy = Signal(str)
    sig_capabilities = Signal(object)
    sig_output_dir = Signal(str)

    def __init__(self, config: RunConfig | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.config = config or RunConfig()
        self.hardware: Any = None
        self.vram: Any = None
        self.dataset: Any = None
        self.dataset_problem = ""  # why the chosen dataset cannot be trained on ("" when it can)
        self._problem_of: tuple[str, str, str] | None = None  # the (path, format, columns) it is about
        self.capabilities: Any = None
        self._capabilities_pending = False
        self._hardware_pending = False
        self._capabilities_wanted = False  # asked for while the hardware was still being detected
        self.exports_running = 0  # a quit lets these finish (within a bound) rather than cut them off
        self.training = TrainingSession(self)
        self.chat = ChatSession(self)
        self._tokenizers: dict[str, Any] = {}
        self._dataset_request = 0
        self._vram_request = 0
        self._vram_timer = QTimer(self, singleShot=True, interval=300)
        self._vram_timer.timeout.connect(self._estimate_vram_now)
        self.training.sig_finished.connect(self._on_run_finished)
        # Before the next run loads, the chat engines let go of the last run's model (and the base).
        self.training.sig_releasing.connect(self._forget_tuned_chat)

    # -- configuration --------------------------------------------------------------------------
    def set_config(self, config: RunConfig) -> None:
        """Replace the whole configuration (editors reload from sig_config).  Runs keep going to the
        app's run folder: a config from elsewhere (a CLI run's relative "runs") must not move them."""
        config.output_dir = self.config.output_dir
        self.config = config
        self.sig_config.emit(config)
        self.config_changed()

    def config_changed(self) -> None:
        """Call after editing `self.config`: refreshes the VRAM estimate (debounced)."""
        self._vram_timer.start()

    def set_output_dir(self, folder: str) -> None:
        """Create new runs inside `folder` from now on (emits sig_output_dir; the window remembers it)."""
        self.config.output_dir = str(folder)
        self.sig_output_dir.emit(str(folder))

    def set_model_source(self, source: str) -> None:
        """Choose the model ("demo", a folder, a .gguf file or a hub id)."""
        if source != self.config.model.source:
            self.config.model.source = source
            self.chat.engines.pop("base", None)  # the base model for side-by-side chat changed
            self.config_changed()
            self.load_dataset()  # rows are rendered with the new model's tokenizer and template

    # -- hardware and memory ----------------------------------------------------------------------
    def detect_hardware(self) -> None:
        """Detect the GPU (imports torch, so it runs in the background after the window shows)."""
        self.sig_busy.emit("Detecting hardware…")
        self._hardware_pending = True
        _engine_job(engines.detect_hardware, self._on_hardware, self._on_hardware_failed)

    def _on_hardware(self, hardware: Any) -> None:
        self.hardware = hardware
        self._hardware_detected()
        self.sig_busy.emit("")
        self.sig_hardware.emit(hardware)
        self._estimate_vram_now()

    def _on_hardware_failed(self, error: BaseException) -> None:
        self._hardware_detected()
        self.sig_busy.emit("")
        self.sig_hardware.emit(None)
        self._report(error, "Could not detect the hardware.")

    def describe_machine(self) -> None:
        """Say what this machine can train (emits sig_capabilities).  Imports torch, so it runs in the
        background; reuses the detected hardware when there is some, and the answer once known."""
        if self.capabilities is not None:
            self.sig_capabilities.emit(self.capabilities)
            return
        if self._capabilities_pending:
            return
        if self._hardware_pending:  # describe with the facts on their way, not a second detection
            self._capabilities_wanted = True
            return
        self._capabilities_pending = True
        hardware = self.hardware

        def op():
            from tunesmith.core.capabilities import describe_machine

            return describe_machine(hardware)

        _engine_job(op, self._on_capabilities, self._on_capabilities_failed)

    def _hardware_detected(self) -> None:
        self._hardware_pending = False
        if self._capabilities_wanted:
            self._capabilities_wanted = False
            self.describe_machine()

    def _on_capabilities(self, capabilities: Any) -> None:
        self._capabilities_pending = False
        self.capabilities = capabilities
        self.sig_capabilities.emit(capabilities)

    def _on_capabilities_failed(self, error: BaseException) -> None:
        self._capabilities_pending = False
        log.warning("could not describe this machine: %s\n%s", error, getattr(error, "details", ""))
        self.sig_capabilities.emit(None)

    def _estimate_vram_now(self) -> None:
        if self.hardware is None:
            return
        config, hardware = copy.deepcopy(self.config), self.hardware
        self._vram_request += 1
        request = self._vram_request
        _engine_job(
            lambda: engines.estimate_vram(config, hardware),
            lambda estimate: self._on_vram(request, estimate),
            lambda error: self._on_vram_failed(request, error),
        )

    def _on_vram(self, request: int, estimate: Any) -> None:
        if request != self._vram_request:
            return  # the settings changed since: a newer estimate is on its way
        self.vram = estimate
        self.sig_vram.emit(estimate)

    def _on_vram_failed(self, request: int, error: BaseException) -> None:
        if request != self._vram_request:
            return
        self.vram = None
        self.sig_vram.emit(None)
        self.sig_vram_text.emit(engines.describe_error(error)[0])

    # -- dataset --------------------------------------------------------------------------------
    def load_dataset(
        self, path: str | None = None, fmt: str | None = None, columns: str | None = None
    ) -> None:
        """Read, check and render the dataset (the configured one unless given); emits sig_dataset, or
        sig_dataset_failed when it cannot be used.  `columns` names a table's question/answer columns."""
        if path is not None:
            if path != self.config.data.path and columns is None:
                columns = ""  # another file: the last one's column names do not apply
            self.config.data.path = path
        if fmt is not None:
            self.config.data.format = fmt
        if columns is not None:
            self.config.data.columns = columns
        self._dataset_request += 1
        request = self._dataset_request
        data, source = copy.deepcopy(self.config.data), self.config.model.source
        self.sig_dataset_busy.emit(True)

        def op():
            return build_preview(
                data.path,
                data.format,
                source,
                data.max_length,
                data.assistant_only_loss,
                self._tokenizers,
                data.template,
                data.columns,
            )

        _engine_job(
            op,
            lambda preview: self._on_dataset(request, preview),
            lambda error: self._on_dataset_failed(request, error),
        )

    def _on_dataset(self, request: int, preview: Any) -> None:
        if request != self._dataset_request:
            return  # a newer request is on its way
        self.dataset = preview
        self.dataset_problem = ""
        self.sig_dataset_busy.emit(False)
        self.sig_dataset.emit(preview)
        self.sig_dataset_state.emit("")

    def _on_dataset_failed(self, request: int, error: BaseException) -> None:
        if request != self._dataset_request:
            return
        message, hint = engines.describe_error(error)
        failure = describe_failure(self.config.data.path, error, hint)
        log.error(
            "Could not use the dataset %s: %s\n%s", failure.path, message, getattr(error, "details", "")
        )
        self.dataset, self.dataset_problem = None, message
        self._problem_of = (self.config.data.path, self.config.data.format, self.config.data.columns)
        self.sig_dataset_busy.emit(False)
        self.sig_dataset_failed.emit(failure)
        self.sig_dataset_state.emit(message)
        # The banner too, without the traceback (that is in the log): the problems are the details.
        details = "\n".join(f"line {line}: {text}" for line, _field, text in failure.problems[:20])
        name = Path(failure.path).name or failure.path
        self.sig_error.emit(
            f"The dataset {name} can't be used: the Dataset tab says why.",
            hint or "Fix the file, then press Reload (F5), or choose another file.",
            details,
        )

    # -- training -------------------------------------------------------------------------------
    def start_training(self) -> bool:
        """Check the settings and start a run; False (with a banner) if they are not valid."""
        data = self.config.data
        if self.dataset_problem and self._problem_of == (data.path, data.format, data.columns):
            self.sig_error.emit("Fix the dataset first.", self.dataset_problem, "")
            return False
        try:
            self.config.validate()
        except Exception as exc:  # noqa: BLE001 - ConfigError names the field
            self._report(exc, "These settings cannot be used.")
            return False
        self.training.start(self.config)
        return True

    def train_on_feedback(self, run_dir: str, method: str = "dpo") -> None:
        """Ready a DPO/ORPO run on the Chat tab's feedback pairs of `run_dir`, continuing its adapter
        (the editors reload; Start runs it)."""
        from tunesmith.desktop.logic.feedback_run import feedback_config

        self.set_config(feedback_config(self.config, run_dir, method))
        self.load_dataset()

    def _on_run_finished(self, event: Finished) -> None:
        self.sig_tuned_available.emit(self.training.tuned is not None or bool(event.adapter_dir))

    def _forget_tuned_chat(self) -> None:
        self.chat.stop()  # an answer being written holds its engine until it ends
        self.chat.drop_engines()
        self.sig_tuned_available.emit(False)

    # -- chat -----------------------------------------------------------------------------------
    def prepare_chat(
        self,
        sides: list[str],
        gguf_path: str | None,
        on_ready,
        on_failed=None,
        run_dir: str | None = None,
        base_source: str | None = None,
    ) -> None:
        """Load the engines for `sides` that are not loaded yet (or were loaded from something else), in
        the background, then call on_ready().  "run" is the past run in `run_dir`; "base" is
        `base_source` (by default the configured model)."""
        base_source = base_source or self.config.model.source
        origins = {"run": run_dir or "", "base": base_source, "gguf": gguf_path or ""}
        needed = [
            side
            for side in sides
            if side not in self.chat.engines or self.chat.origins.get(side, "") != origins.get(side, "")
        ]
        if not needed:
            on_ready()
            return
        for side in needed:  # a replaced model lets go of its memory before the next one loads
            self.chat.engines.pop(side, None)
        tuned, last_run_dir, lora = self.training.tuned, self.training.last_run_dir, self.chat.lora
        self.sig_busy.emit("Loading the model for chat…")

        def load(side: str) -> Any:
            if side != "run":
                return engines.chat_engine(side, tuned, base_source, gguf_path, last_run_dir, lora)
            if not run_dir:
                raise engines.ChatNotReady("Pick a past run first.")
            return engines.chat_engine("tuned", load_run_model(run_dir), base_source, None, None)

        def op():
            free_memory()  # engines replaced since (dropped on the GUI thread) leave before new ones load
            return {side: load(side) for side in needed}

        def done(loaded: dict) -> None:
            self.sig_busy.emit("")
            for side, engine in loaded.items():
                self.chat.set_engine(side, engine, origins.get(side, ""))
            on_ready()

        def failed(error: BaseException) -> None:
            self.sig_busy.emit("")
            self._report(error, "Could not load the model for chat.")
            if on_failed is not None:
                on_failed(error)

        _engine_job(op, done, failed)

    def is_adapter_gguf(self, path: str) -> bool:
        """Whether a .gguf file is a LoRA adapter rather than a whole model (reads its header only)."""
        return engines.is_adapter_gguf(path)

    def chat_placement(self, engine: Any) -> str:
        """Where a loaded chat engine computes, in words (shown in the Chat tab)."""
        return engines.placement(engine)

    def chat_settings(self, values: dict) -> Any:
        """The engine's ChatSettings from plain values (system_prompt, temperature, top_p, max_new_tokens)."""
        return engines.chat_settings(values)

    # -- export ---------------------------------------------------------------------------------
    def export(self, fmt: str, quant: str | None, output: str | None) -> None:
        """Export the last run (adapter, merged model or GGUF) in the background; emits sig_export_done."""
        run_dir = self.training.last_run_dir
        if not run_dir:
            self.sig_error.emit("There is no trained run to export yet.", "Train a model first.", "")
            return
        self.sig_busy.emit("Exporting…")
        self.exports_running += 1
        what = export_title(fmt, quant)
        self.sig_export_progress.emit(what, 0.0, "Starting")

        def progress(fraction: float, message: str = "") -> None:  # on the export's thread: queued to the GUI
            self.sig_info.emit(f"Exporting: {message} ({fraction:.0%})")
            self.sig_export_progress.emit(what, fraction, message)

        def op():
            return engines.export_run(run_dir, fmt, quant=quant, output=output, on_progress=progress)

        def done(result: Any) -> None:
            self.exports_running -= 1
            self.sig_busy.emit("")
            self.sig_export_done.emit(result)

        def failed(error: BaseException) -> None:
            self.exports_running -= 1
            self.sig_busy.emit("")
            self._report(error, "Export failed.")

        _engine_job(op, done, failed)

    # -- errors ---------------------------------------------------------------------------------
    def _report(self, error: BaseException, context: str) -> None:
        message, hint = engines.describe_error(error)
        if context and context not in message:
            message = f"{context} {message}"
        details = getattr(error, "details", "")
        log.error("%s\n%s", message, details)
        self.sig_error.emit(message, hint, details)


def _engine_job(
    op: Callable[[], Any],
    on_success: Callable[[Any], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> None:
    """`run_in_background(op, ...)`, with the heavy libraries imported (or waited for) before `op`."""

    def job() -> Any:
        import_heavy()
        return op()

    run_in_background(job, on_success, on_failure)
