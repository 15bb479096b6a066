"""The training engine: one run, from config to saved adapter, reported through events.

`TrainingRun` walks the phases of a run — setup_model, setup_data, setup_trainer, train, save,
cleanup — and never raises for training problems: `run()` returns the final `Finished` or `Failed`
event, which was also emitted and written to `metrics.jsonl`.  `cancel()` may be called from any
thread; training stops within one step and keeps a checkpoint.  TRL does the optimisation; this class
only wires config, data, model, events and files together.

Everything that can be checked without the model is checked first (core.training.preflight), before
a run folder is even made; a failure's message names settings as the caller's interface does
(`name_setting`: CLI flags for the CLI).

Checkpoints are crash-safe (core.training.checkpoints): written aside and renamed when complete, one
every `train.checkpoint_minutes` and one on Stop; resume takes the newest complete one and says which.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from tunesmith.core.config import RunConfig, setting_at
from tunesmith.core.events import Event, Failed, Finished, LogLine, RunStarted
from tunesmith.core.paths import new_run_dir
from tunesmith.core.training.first_step import first_step_words
from tunesmith.core.training.loss_watch import LossWatch

if TYPE_CHECKING:  # heavy: the phases import them when they run
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback

    from tunesmith.core.data.prepare import PreparedData
    from tunesmith.core.models.loading import LoadedModel
    from tunesmith.core.training.callbacks import EventBridge
    from tunesmith.core.training.methods import RowData
    from tunesmith.core.training.preflight import CheckedRun

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "train.log"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"

_T = TypeVar("_T")


def _after(value: _T | None, phase: str) -> _T:
    """What an earlier phase set (run() calls them in order; a caller driving them itself must too)."""
    if value is None:
        raise RuntimeError(f"TrainingRun.{phase}() has not run yet")
    return value


class TrainingRun:
    # True in a process that is one rank of several (core.training.rank_main): it trains itself
    one_rank = False

    def __init__(
        self,
        config: RunConfig,
        on_event: Callable[[Event], None] | None = None,
        resume_from: str | Path | None = None,
        extra_callbacks: list[TrainerCallback] | None = None,
        name_setting: Callable[[str], str] | None = None,
    ):
        self.config = config
        self._name_setting = name_setting or (lambda setting: setting)
        self._on_event = on_event or (lambda event: None)
        self._resume_from = Path(resume_from) if resume_from else None
        self._extra_callbacks = list(extra_callbacks or [])
        self._cancel = threading.Event()
        self._bridge: EventBridge | None = None
        self.run_dir: Path | None = None
        self.model: PreTrainedModel | PeftModel | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.loaded: LoadedModel | None = None
        self.data: PreparedData | RowData | None = None
        self.trainer: Trainer | None = None
        self._log_handler: logging.Handler | None = None
        self._checkpoint: Path | None = None  # the one this run resumes from
        self.checked: CheckedRun | None = None  # what the pre-load checks found

    # ----------------------------------------------------------------- public
    def cancel(self) -> None:
        """Ask the run to stop after the current step (a checkpoint is saved).  Thread-safe."""
        self._cancel.set()
        if self._bridge is not None:
            self._bridge.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> Finished | Failed:
        try:
            if self.config.train.gpus > 1 and not self.one_rank:  # ranks as child processes, one stream
                from tunesmith.core.training.launcher import run_on_ranks

                return run_on_ranks(self)
            self.check()
            self.setup_run_dir()
            for note in _after(self.checked, "check").notes:
                self._emit(note)
            self.setup_model()
            self.setup_data()
            self.setup_trainer()
            if self.cancelled:
                return self._finish(_after(self.trainer, "setup_trainer").state.global_step, cancelled=True)
            self.train()
            return self.save()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a Failed event
            if isinstance(exc, KeyboardInterrupt):
                self._cancel.set()
            return self._fail(exc)
        finally:
            self.cleanup()

    # ----------------------------------------------------------------- phases
    def check(self) -> None:
        """Settings, model files, data and rewards, before anything heavy loads or a folder is made."""
        from tunesmith.core.training.preflight import check_run

        self.checked = check_run(self.config)

    def setup_run_dir(self) -> None:
        if self._resume_from is not None:
            self.run_dir = _run_dir_of(self._resume_from)
        else:
            self.run_dir = new_run_dir(self.config.output_dir, self.config.run_name)
        _end_last_line(self.run_dir / METRICS_FILE)  # a killed run may have left half a line
        self.config.to_yaml(self.run_dir / CONFIG_FILE)
        self._log_handler = _attach_log_file(self.run_dir / LOG_FILE)
        self._checkpoint = self._checkpoint_to_resume()  # before the model loads: a wrong folder fails fast

    def setup_model(self) -> None:
        _quiet_progress_bars()
        from transformers import set_seed

        from tunesmith.core.hardware import detect_hardware
        from tunesmith.core.models.loading import load_for_training

        # Seed before LoRA's random init, so two runs with one seed start from the same adapter.
        set_seed(self.config.train.seed)
        hardware = detect_hardware()
        self._emit(
            LogLine("info", f"Loading {self.config.model.source} ({hardware.summary().splitlines()[0]})")
        )
        self.loaded = load_for_training(
            self.config.model, self.config.lora, hardware, self.config.train.gradient_checkpointing
        )
        report = self.loaded.kernel_report
        if report is not None and report.patched:
            replaced = ", ".join(f"{name} x{count}" for name, count in report.replaced.items())
            self._emit(LogLine("info", f"Tunesmith kernels patched in ({report.model_type}): {replaced}"))
        elif report is not None:
            self._emit(LogLine("info", f"Model left stock: {'; '.join(report.notes)}"))
        for note in self.loaded.notes:
            self._emit(LogLine("warning", note))
        self.model, self.tokenizer = self.loaded.model, self.loaded.tokenizer
        self._check_host_memory(report)

    def _check_host_memory(self, report) -> None:
        """Before step 1: the longest batches' layer inputs must fit the kernels' host-memory budget
        (or the GPU), else the run stops here with the longest length that would fit."""
        if report is None or not getattr(report, "patched", False):
            return  # stock model: nothing pinned by the kernels (and a CPU-only build has no Triton)
        from tunesmith.core.models.host_memory import host_memory_problem
        from tunesmith.kernels.memory.host_budget import HostMemoryShort

        train, loaded = self.config.train, _after(self.loaded, "setup_model")
        problem = host_memory_problem(
            loaded.model, report, train.batch_size, self.config.data.max_length, loaded.compute.itemsize
        )
        if problem:
            raise HostMemoryShort(problem)
        budget = getattr(report, "host_budget", None)
        if budget is not None:
            self._emit(
                LogLine("info", f"Pinned host memory for the kernels: at most {budget.limit / 2**30:.1f} GiB")
            )

    def setup_data(self) -> None:
        from tunesmith.core.training.methods import prepare_data

        if self.checked is None:  # a caller driving the phases itself skipped check()
            self.check()
        tokenizer, checked = _after(self.tokenizer, "setup_model"), _after(self.checked, "check")
        self.data = prepare_data(self.config, tokenizer, self._emit, checked.dataset)

    def setup_trainer(self) -> None:
        from tunesmith.core.training.callbacks import EventBridge
        from tunesmith.core.training.checkpoints import CheckpointTimer, install_atomic_saving
        from tunesmith.core.training.methods import build_trainer

        self._bridge = EventBridge(self._emit, watch=_loss_watch(self.config))
        if self.cancelled:
            self._bridge.cancel()
        timer = CheckpointTimer(self.config.train.checkpoint_minutes * 60)
        if self.data is None:  # mypy cannot solve _after's type variable for a union
            raise RuntimeError("TrainingRun.setup_data() has not run yet")
        built = build_trainer(
            self.config,
            _after(self.loaded, "setup_model"),
            self.data,
            _after(self.run_dir, "setup_run_dir") / CHECKPOINTS,
            [self._bridge, timer, *self._extra_callbacks],
        )
        self.trainer = built.trainer
        install_atomic_saving(self.trainer)
        for note in built.notes:
            self._emit(LogLine("info", note))

    def train(self) -> None:
        checkpoint = self._checkpoint
        loaded, trainer = _after(self.loaded, "setup_model"), _after(self.trainer, "setup_trainer")
        trainable, total = loaded.parameter_counts()
        report = loaded.kernel_report
        budget = getattr(report, "host_budget", None)
        first_step = first_step_words(
            loaded.device,
            bool(report is not None and report.patched),
            budget.limit if budget is not None else None,
            self.config.train.method,
        )
        self._emit(
            RunStarted(
                run_dir=str(self.run_dir),
                total_steps=trainer.state.max_steps or self._planned_steps(),
                resumed_from_step=_step_of(checkpoint) if checkpoint else 0,
                device=loaded.device,
                precision=loaded.precision,
                trainable_params=trainable,
                total_params=total,
                first_step=first_step,
            )
        )
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    def save(self) -> Finished:
        trainer = _after(self.trainer, "setup_trainer")
        adapter_dir = _after(self.run_dir, "setup_run_dir") / ADAPTER
        tmp = adapter_dir.with_name(ADAPTER + ".tmp")
        # the LoRA model load_for_training made (Trainer types its model as any nn.Module)
        cast("PeftModel", trainer.model).save_pretrained(str(tmp))
        _after(self.tokenizer, "setup_model").save_pretrained(str(tmp))
        if adapter_dir.exists():  # a resumed run replaces its own earlier adapter
            _remove_tree(adapter_dir)
        tmp.rename(adapter_dir)
        return self._finish(trainer.state.global_step, cancelled=self.cancelled)

    def cleanup(self) -> None:
        if self._log_handler is not None:
            _detach_log_file(self._log_handler)
            self._log_handler = None
        if self.trainer is not None:
            self.trainer.callback_handler.callbacks = [
                c for c in self.trainer.callback_handler.callbacks if c not in self._extra_callbacks
            ]
        _free_accelerator_memory()

    # ----------------------------------------------------------------- helpers
    def _emit(self, event: Event) -> None:
        if self.run_dir is not None:
            with (self.run_dir / METRICS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(event.to_dict()) + "\n")
        if isinstance(event, LogLine):
            # Into the run's log file; listeners (CLI, app) show the event themselves.
            log.info("%s%s", "warning: " if event.level == "warning" else "", event.message)
        try:
            self._on_event(event)
        except Exception:  # a broken listener must not kill training
            log.exception("Event listener failed on %s", event.kind)

    def _finish(self, step: int, cancelled: bool) -> Finished:
        last_checkpoint = self._bridge.last_checkpoint if self._bridge else None
        final_loss = self._bridge.last_loss if self._bridge else None
        run_dir = _after(self.run_dir, "setup_run_dir")
        event = Finished(
            run_dir=str(run_dir),
            adapter_dir=str(run_dir / ADAPTER),
            step=step,
            final_loss=final_loss,
            cancelled=cancelled,
            last_checkpoint=last_checkpoint or _latest_checkpoint(run_dir / CHECKPOINTS),
            problem=self._bridge.verdict() if self._bridge else None,
        )
        self._emit(event)
        return event

    def _fail(self, exc: BaseException) -> Failed:
        from tunesmith.core.training.errors import explain

        message, hint = explain(exc, self.config, self._name_setting)
        # Into the run's log with its traceback; interfaces show the Failed event below instead.
        log.error("%s", message, exc_info=exc, extra={"reported_as_event": True})
        checkpoint = _latest_checkpoint(self.run_dir / CHECKPOINTS) if self.run_dir else None
        event = Failed(
            message=message,
            hint=hint,
            details="".join(traceback.format_exception(exc)),
            run_dir=str(self.run_dir) if self.run_dir else None,
            last_checkpoint=str(checkpoint) if checkpoint else None,
        )
        self._emit(event)
        return event

    def _checkpoint_to_resume(self) -> Path | None:
        """The newest complete checkpoint (or the one named), saying which and what was passed over."""
        from tunesmith.core.training.checkpoints import choose_resume, problem_with, step_of
        from tunesmith.core.training.multi_gpu import resume_notice

        if self._resume_from is None:
            return None
        if self._resume_from.name.startswith("checkpoint-"):
            chosen = self._resume_from.expanduser().resolve()
            problem = problem_with(chosen)
            if problem is not None:
                raise ValueError(
                    f"{chosen.name} cannot be resumed from: {problem}. Resume from the run folder "
                    f"({self.run_dir}) to use its newest complete checkpoint."
                )
        else:
            newest, skipped = choose_resume(_after(self.run_dir, "setup_run_dir") / CHECKPOINTS)
            for item in skipped:
                self._emit(LogLine("warning", str(item)))
            if newest is None:
                broken = f" ({len(skipped)} incomplete)" if skipped else ""
                raise ValueError(f"{self.run_dir}: no complete checkpoint to resume from{broken}")
            chosen = newest
        self._emit(LogLine("info", f"Resuming from {chosen.name} (step {step_of(chosen)})"))
        if notice := resume_notice(chosen, self.config):  # saved by another number of GPUs
            self._emit(LogLine("info", notice))
        return chosen

    def _planned_steps(self) -> int:
        return int(getattr(_after(self.trainer, "setup_trainer").args, "max_steps", 0) or 0)


def _loss_watch(config: RunConfig) -> LossWatch:
    """The watch over this run's loss; GRPO's loss says nothing about progress, only NaN counts there."""
    usual = setting_at("train.learning_rate").usual
    return LossWatch(
        learning_rate=config.train.learning_rate,
        usual_learning_rate=usual[1] if usual else 1e-3,
        measures_progress=config.train.method != "grpo",
    )


def _run_dir_of(path: Path) -> Path:
    """RUN_DIR or RUN_DIR/checkpoints/checkpoint-N → RUN_DIR (a resumed run keeps its folder)."""
    path = path.expanduser().resolve()
    if path.name.startswith("checkpoint-"):
        path = path.parent.parent
    if not (path / CONFIG_FILE).is_file():
        raise ValueError(f"{path}: not a Tunesmith run folder (no {CONFIG_FILE})")
    return path


def _step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1])


def _latest_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint: the one a resume would take."""
    from tunesmith.core.training.checkpoints import latest_complete

    found = latest_complete(folder)
    return str(found) if found else None


def _end_last_line(path: Path) -> None:
    """A run killed mid-write leaves a last line without its newline; end it so new lines stay whole."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            handle.write(b"\n")


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("tunesmith", "transformers", "trl", "peft"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
    # Only our own logger is turned up to INFO: the libraries keep their levels (and console output).
    tunesmith_logger = logging.getLogger("tunesmith")
    if tunesmith_logger.level == logging.NOTSET or tunesmith_logger.level > logging.INFO:
        tunesmith_logger.setLevel(logging.INFO)
    return handler


def _detach_log_file(handler: logging.Handler) -> None:
    for name in ("tunesmith", "transformers", "trl", "peft"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def _quiet_progress_bars() -> None:
    """Library progress bars would interleave with our events on the console and in the app's log."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
