"""One evaluation report, start to finish: rows, models, each part in turn, the files, with progress.

`EvalRun(run_dir, options, on_progress).run()` returns the report's folder, a new one under
RUN_DIR/eval/ each time (an earlier report is never touched).  The files are written into a hidden
temporary folder beside it, which is renamed into place only when both are complete, so a crash or a
Cancel leaves no half report.  `cancel()` may be called from any thread: the run stops after the row or
answer in progress and raises EvalCancelled.  Progress is a small plain event (`EvalProgress`) with an
ETA from the pace so far, weighted by what each step costs.  Knows the order of the parts; each part's
work is in its own module.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .perplexity import EvalCancelled

log = logging.getLogger(__name__)

EVAL_FOLDER = "eval"
# Relative cost of one unit of each kind of work (one row's loss = 1), measured roughly on the demo
# model on a CPU: an answer of up to 64 tokens ~ 12 row losses, a judge verdict ~ 8, a probe window ~ 6.
_COST = {"load": 30.0, "row": 1.0, "probe": 6.0, "answer": 12.0, "verdict": 8.0}


@dataclass(frozen=True)
class EvalOptions:
    prompts_file: str | None = None  # JSONL of {"prompt", optional "reference"}; default: held-out rows
    judge_gguf: str | None = None
    limit: int | None = None  # at most this many rows / prompts / probe windows per part
    split_file: str | None = None  # held-out rows when the run kept none aside
    max_new_tokens: int = 64
    seed: int = 0


@dataclass(frozen=True)
class EvalProgress:
    part: str  # "Learned", "Answers", "Forgot", "Judge", ...
    message: str
    fraction: float  # 0..1 of the whole report
    eta_seconds: float | None


class EvalRun:
    def __init__(
        self,
        run_dir: str | Path,
        options: EvalOptions | None = None,
        on_progress: Callable[[EvalProgress], None] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.options = options or EvalOptions()
        self._on_progress = on_progress or (lambda p: None)
        self._cancel = threading.Event()
        self._total = 0.0
        self._done = 0.0
        self._started = 0.0
        self._part = ""

    def cancel(self) -> None:
        """Stop after the current row or answer (thread-safe); run() then raises EvalCancelled."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ----------------------------------------------------------------- progress
    def _report(self, message: str) -> None:
        fraction = self._done / self._total if self._total else 0.0
        elapsed = time.monotonic() - self._started
        eta = elapsed / self._done * (self._total - self._done) if self._done > 0 else None
        self._on_progress(EvalProgress(self._part, message, min(fraction, 1.0), eta))

    def _ticker(self, kind: str, what: str, count: int) -> Callable[[], None]:
        state = {"n": 0}

        def tick() -> None:
            if self.cancelled:
                raise EvalCancelled("the evaluation was cancelled; no report was written")
            state["n"] += 1
            self._done += _COST[kind]
            self._report(f"{what} {state['n']}/{count}")

        return tick

    def _check(self) -> None:
        if self.cancelled:
            raise EvalCancelled("the evaluation was cancelled; no report was written")

    # ----------------------------------------------------------------- the run
    def run(self) -> Path:
        from .forgetting import PROBE_WINDOW, probe_text
        from .models import load_pair, open_run_folder
        from .perplexity import text_windows
        from .report import training_curves, write_report
        from .rows import NO_SPLIT, EvalSetupError, choose_rows

        self._started = time.monotonic()
        timings: dict[str, float] = {}
        opts = self.options
        run_dir, config = open_run_folder(self.run_dir)
        if not opts.split_file and not config.data.eval_ratio > 0:
            raise EvalSetupError(NO_SPLIT)  # said before the models load, not after
        self._part, self._total = "Loading", _COST["load"]
        self._report("loading the base model and the run's adapter")
        t0 = time.monotonic()
        pair = load_pair(run_dir, config)
        rows = choose_rows(config, pair.tokenizer, opts.split_file, opts.prompts_file, opts.limit)
        # --limit caps the probe's windows too (each is PROBE_WINDOW tokens): a quick look reads less of it
        windows = text_windows(pair.tokenizer, probe_text(), PROBE_WINDOW)[: opts.limit or None]
        self._done = _COST["load"]
        self._total += 2 * (
            (len(rows.held_out) + len(rows.training)) * _COST["row"]
            + len(windows) * _COST["probe"]
            + len(rows.prompts) * _COST["answer"]
        ) + (2 * len(rows.prompts) * _COST["verdict"] if opts.judge_gguf else 0)
        timings["Loading the models"] = time.monotonic() - t0
        self._check()

        t0 = time.monotonic()
        learned = self._learned(pair, config, rows)
        timings["Learned (loss on held-out and training rows)"] = time.monotonic() - t0
        t0 = time.monotonic()
        answers = self._answers(pair, rows)
        timings["Answers side by side"] = time.monotonic() - t0
        t0 = time.monotonic()
        forgot = self._forgot(pair, windows)
        timings["Forgot (general-text probe)"] = time.monotonic() - t0
        judge = None
        if opts.judge_gguf:
            t0 = time.monotonic()
            judge = self._judge(answers)
            timings["Judge"] = time.monotonic() - t0
        del pair  # free the models before writing
        self._part = "Writing"
        self._report("writing the report")
        report = {
            "run_name": run_dir.name,
            "run_dir": str(run_dir),
            "made_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "settings": _settings(config),
            "data": {
                "dataset": rows.dataset_summary,
                "held_out": rows.held_out_source,
                "held_out_rows": len(rows.held_out),
                "training_rows_scored": len(rows.training),
                "prompts": rows.prompts_source,
                "prompts_answered": len(rows.prompts),
            },
            "learned": learned,
            "answers": {
                "source": rows.prompts_source,
                "seed": opts.seed,
                "max_new_tokens": opts.max_new_tokens,
                "means": answers.means(),
                "pairs": [p.to_dict() for p in answers.pairs],
            },
            "forgot": forgot,
            "judge": judge.to_dict() if judge else None,
            "training_curves": training_curves(run_dir / "metrics.jsonl"),
            "timings": timings,
        }
        timings["Total"] = time.monotonic() - self._started
        return self._write(run_dir, report, write_report)

    def _learned(self, pair: Any, config: Any, rows: Any) -> dict[str, Any]:
        from .perplexity import rows_loss

        self._part = "Learned"
        out: dict[str, Any] = {}
        for name, part in (("held_out", rows.held_out), ("training", rows.training)):
            if not part:
                continue
            result = {}
            for tuned in (False, True):
                label = "tuned" if tuned else "base"
                tick = self._ticker("row", f"{label} loss on {name.replace('_', '-')} rows", len(part))
                with pair.side(tuned) as model:
                    result[label] = rows_loss(
                        model,
                        pair.tokenizer,
                        part,
                        config.data.max_length,
                        config.data.assistant_only_loss,
                        tick,
                    ).to_dict()
            out[name] = result
        held = out.get("held_out")
        train = out.get("training")
        summary = ""
        if held:
            b, t = held["base"]["loss"], held["tuned"]["loss"]
            summary = f"On held-out rows the tuned model's loss is {t:.3f} against the base's {b:.3f}: " + (
                "it learned what the data teaches." if t < b else "it did not learn what the data teaches."
            )
        if held and train:
            gap = held["tuned"]["loss"] - train["tuned"]["loss"]
            if gap > 0.5 and train["tuned"]["loss"] < 0.5 * held["tuned"]["loss"]:
                summary += (
                    f" Its loss on training rows ({train['tuned']['loss']:.3f}) is far below the held-out loss: "
                    "it has started to memorise its training rows (over-fitting); fewer steps may do better."
                )
        out["summary"] = summary or "No held-out rows were scored."
        return out

    def _answers(self, pair: Any, rows: Any) -> Any:
        from .answers import answer_prompts

        self._part = "Answers"
        tick = self._ticker("answer", "answer", 2 * len(rows.prompts))
        return answer_prompts(pair, rows.prompts, self.options.max_new_tokens, self.options.seed, tick)

    def _forgot(self, pair: Any, windows: list[list[int]]) -> dict[str, Any]:
        from .forgetting import probe_path, verdict
        from .perplexity import text_loss

        self._part = "Forgot"
        results = {}
        for tuned in (False, True):
            label = "tuned" if tuned else "base"
            with pair.side(tuned) as model:
                results[label] = text_loss(
                    model, windows, self._ticker("probe", f"{label} on general text", len(windows))
                )
        words = verdict(results["base"], results["tuned"])
        return {
            "base": results["base"].to_dict(),
            "tuned": results["tuned"].to_dict(),
            "verdict": words.to_dict(),
            "about": f"{probe_path().name}: {results['base'].tokens} tokens of general prose bundled with "
            "Tunesmith; kept below a 5% rise, markedly worse from a 20% rise in perplexity.",
        }

    def _judge(self, answers: Any) -> Any:
        from .judge import judge_answers

        self._part = "Judge"
        tick = self._ticker("verdict", "verdict", 2 * len(answers.pairs))
        assert self.options.judge_gguf
        return judge_answers(self.options.judge_gguf, answers.pairs, tick, lambda: self.cancelled)

    def _write(self, run_dir: Path, report: dict[str, Any], write: Callable[[Path, dict], None]) -> Path:
        root = run_dir / EVAL_FOLDER
        root.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        tmp = root / f".{stamp}-{os.getpid()}.partial"
        tmp.mkdir()
        try:
            write(tmp, report)
            self._check()
            for suffix in range(1000):
                final = root / (stamp if suffix == 0 else f"{stamp}-{suffix}")
                if final.exists():
                    continue
                try:
                    os.rename(tmp, final)  # a new name only: an earlier report is never replaced
                except OSError:
                    continue  # another report took the name meanwhile
                self._part = "Done"
                self._done = self._total
                self._report(f"report written to {final}")
                return final
            raise RuntimeError(f"could not find a new folder name in {root}")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _settings(config: Any) -> dict[str, Any]:
    """The settings a reader wants beside the results (the whole config is in the run's config.yaml)."""
    lora = f"r {config.lora.r}, alpha {config.lora.alpha}" if config.lora.enabled else "off (full fine-tune)"
    steps = config.train.max_steps if config.train.max_steps > 0 else f"{config.train.epochs} epochs"
    return {
        "Model": config.model.source,
        "Precision": config.model.precision,
        "Method": config.train.method.upper(),
        "Dataset": config.data.path,
        "Max length": config.data.max_length,
        "Evaluation split": config.data.eval_ratio,
        "LoRA": lora,
        "Learning rate": config.train.learning_rate,
        "Batch size": f"{config.train.batch_size} x {config.train.grad_accum} accumulation",
        "Steps": steps,
        "Seed": config.train.seed,
    }
