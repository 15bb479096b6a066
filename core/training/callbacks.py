"""The bridge from TRL/transformers' Trainer to Tunesmith events, and the stop flag.

`EventBridge` is a TrainerCallback: it turns the Trainer's logs into StepMetrics / EvalMetrics events
(adding tokens/s, the peak memory since the previous step event and ETA), reports saved checkpoints,
and stops training within one step when `cancel()` was called (saving a checkpoint first) or when its
`LossWatch` finds the loss ruined or diverging (`problem` then says why).  It knows the Trainer's
callback protocol and our events, nothing about models or datasets.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, SupportsFloat, TypeGuard

from transformers import TrainerCallback

from tunesmith.core.events import CheckpointSaved, EvalMetrics, EventCallback, LogLine, StepMetrics
from tunesmith.core.hardware import MemorySource, PeakMemory
from tunesmith.core.training.loss_watch import LossWatch

# Log keys that are part of StepMetrics itself; everything else numeric goes to `extra`.
_STANDARD_KEYS = {"loss", "learning_rate", "grad_norm", "epoch", "step", "num_tokens"}


class TokenCounter:
    """Counts the real (non-padding) tokens the data collator hands to the model."""

    def __init__(self, collator: Any):
        self.collator = collator
        self.tokens = 0

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.collator(examples)
        if isinstance(batch, dict) and "input_ids" in batch:  # GRPO's collator passes raw rows through
            mask = batch.get("attention_mask")
            self.tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        return batch


class EventBridge(TrainerCallback):
    def __init__(
        self,
        emit: EventCallback,
        counter: TokenCounter | None = None,
        memory: MemorySource | None = None,
        watch: LossWatch | None = None,
    ):
        self.emit = emit
        self.counter = counter
        self.watch = watch
        self.problem: str | None = None  # why the watch stopped the run, in words
        self._memory_source = memory
        self._memory: PeakMemory | None = None  # made at train begin: the GPU is set up by then
        self.stop_requested = threading.Event()
        self.last_loss: float | None = None
        self.last_checkpoint: str | None = None
        self._mark_time = time.perf_counter()
        self._mark_tokens: float | None = 0
        self._mark_step = 0
        self._seconds_per_step: float | None = None

    def cancel(self) -> None:
        self.stop_requested.set()

    def on_train_begin(self, args, state, control, **kwargs):
        self._memory = PeakMemory(self._memory_source)
        self._memory.start()  # loading's peak is not the first step's
        self._mark_time = time.perf_counter()
        self._mark_step = state.global_step
        self._mark_tokens = None

    def _tokens_seen(self, logs: dict) -> float:
        """Tokens trained on so far: TRL's own count where it logs one, else our collator's.

        The collator counts batches when the dataloader fetches them, which runs ahead of the steps
        at epoch boundaries; TRL's `num_tokens` is counted when the step is taken.
        """
        if "num_tokens" in logs:
            return float(logs["num_tokens"])
        return float(self.counter.tokens if self.counter else 0)

    def on_step_end(self, args, state, control, **kwargs):
        if self._memory is not None:
            self._memory.sample()
        return self._maybe_stop(control)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self._emit_step(state, logs)
            self._watch_loss(state.global_step)
            # A listener may cancel on seeing this step; the Trainer saves and stops after its logs,
            # so checking here stops at this very step rather than the next one.
            self._maybe_stop(control)
        elif "eval_loss" in logs:
            extra = {k: float(v) for k, v in logs.items() if k != "eval_loss" and _is_number(v)}
            self.emit(EvalMetrics(step=state.global_step, eval_loss=float(logs["eval_loss"]), extra=extra))

    def _watch_loss(self, step: int) -> None:
        if self.watch is None or self.problem is not None or self.last_loss is None:
            return
        problem = self.watch.see(step, self.last_loss)
        if problem:
            self.problem = problem
            self.emit(LogLine("warning", problem + " The run stops here."))
            self.stop_requested.set()

    def verdict(self) -> str | None:
        """Why the run probably did not work, in words (None when the loss behaved)."""
        return self.problem or (self.watch.verdict() if self.watch else None)

    def _maybe_stop(self, control):
        if self.stop_requested.is_set():
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.last_checkpoint = str(path)
        self.emit(CheckpointSaved(step=state.global_step, path=str(path)))

    def _emit_step(self, state, logs: dict) -> None:
        now = time.perf_counter()
        steps = max(state.global_step - self._mark_step, 1)
        elapsed = now - self._mark_time
        seen = self._tokens_seen(logs)
        # After a resume TRL's count restarts from the checkpoint's; the first interval has no baseline.
        tokens = seen - self._mark_tokens if self._mark_tokens is not None else seen
        per_step = elapsed / steps
        # Exponential average: the first steps are slow (warm-up, allocation), later ones steady.
        self._seconds_per_step = (
            per_step if self._seconds_per_step is None else 0.7 * self._seconds_per_step + 0.3 * per_step
        )
        self._mark_time, self._mark_step = now, state.global_step
        self._mark_tokens = self._tokens_seen(logs)
        if self._memory is None:  # logged outside train(): its interval starts now
            self._memory = PeakMemory(self._memory_source)
        peak = self._memory.report()
        self.last_loss = float(logs["loss"])
        grad = logs.get("grad_norm")
        self.emit(
            StepMetrics(
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=float(logs.get("epoch") or state.epoch or 0.0),
                loss=self.last_loss,
                learning_rate=float(logs.get("learning_rate", 0.0)),
                grad_norm=float(grad) if _is_number(grad) else None,
                tokens_per_second=tokens / elapsed if elapsed > 0 else 0.0,
                peak_allocated_gb=peak.allocated_gb,
                peak_reserved_gb=peak.reserved_gb,
                memory_total_gb=peak.total_gb,
                eta_seconds=max(state.max_steps - state.global_step, 0) * self._seconds_per_step,
                extra={k: float(v) for k, v in logs.items() if k not in _STANDARD_KEYS and _is_number(v)},
            )
        )


def _is_number(value: Any) -> TypeGuard[SupportsFloat | str]:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)
