"""The CLI's commands: argument definitions and handlers for info, data check, train and demo.

Each `add_*` registers a sub-command with its `handler`; handlers return an exit status.  They call
the engine's public API and print results for people; they hold no engine logic of their own.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

from tunesmith.core.cli_settings import add_setting_flags, config_from_args, setting_namer
from tunesmith.core.config import DATA_FORMAT_CHOICES, TOO_LONG_CHOICES, ConfigError
from tunesmith.core.events import (
    CheckpointSaved,
    EvalMetrics,
    Event,
    Failed,
    Finished,
    LogLine,
    RunStarted,
    StepMetrics,
)

if TYPE_CHECKING:
    from tunesmith.core.data import DatasetFile
    from tunesmith.core.training.engine import TrainingRun

__all__ = ["add_data", "add_demo", "add_info", "add_train", "config_from_args", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """One line (or a few) a person can act on."""
    problems = getattr(exc, "problems", None)
    text = str(exc) or type(exc).__name__
    if problems:
        text += "\n" + "\n".join(str(p) for p in problems[:20])
    return text


# ----------------------------------------------------------------------------- info
def add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show the GPU, its memory and library versions (or 'CPU only')")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    import json

    from tunesmith.core.hardware import detect_hardware

    hw = detect_hardware()
    if args.json:
        print(json.dumps(hw.to_dict(), indent=2))
        return 0
    print(hw.summary())
    if hw.has_gpu:
        print(
            f"4-bit QLoRA: {'yes' if hw.supports_4bit else 'no'}; bf16: {'yes' if hw.supports_bf16 else 'no'}"
        )
    return 0


# ----------------------------------------------------------------------------- data check
def add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="work with dataset files")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    check = data_sub.add_parser(
        "check",
        help="detect a dataset's format, count usable rows, show token lengths and list broken rows",
        description="Exit status 0 when every row is usable, 1 when some are broken "
        "(each printed as FILE:LINE: what is wrong).",
    )
    check.add_argument("file", help="a .jsonl, .json, .csv, .parquet or .txt file")
    check.add_argument(
        "--format",
        default="auto",
        choices=list(DATA_FORMAT_CHOICES),
        help="the rows' layout (default: detected)",
    )
    check.add_argument(
        "--columns",
        default="",
        metavar="question=COLUMN,answer=COLUMN",
        help="which columns hold the question and the answer, when they are not named as usual",
    )
    check.add_argument("--model", default="demo", help="model whose tokenizer counts tokens (default: demo)")
    check.add_argument("--max-length", type=int, default=512, help="max tokens per row (default 512)")
    check.add_argument(
        "--too-long",
        default="cut",
        choices=list(TOO_LONG_CHOICES),
        help="what training will do with longer rows: cut, split or drop (default cut)",
    )
    check.add_argument("--no-tokens", action="store_true", help="skip token counting (no model needed)")
    check.set_defaults(handler=run_data_check)
    from tunesmith.core.data.import_cli import add_import_parser  # argparse only: --help stays instant

    add_import_parser(data_sub)
    data.set_defaults(handler=lambda args: data.print_help() or 2)


def run_data_check(args: argparse.Namespace) -> int:
    from tunesmith.core.data import load_dataset_file

    dataset = load_dataset_file(args.file, args.format, args.columns)
    print(f"{args.file}: format {dataset.format}; {dataset.summary()}")
    for note in dataset.notes:
        print(f"note: {note}")
    if not args.no_tokens and dataset.format not in ("preference", "prompt"):
        print(_token_summary(dataset, args.model, args.max_length, args.too_long))
    for problem in dataset.problems:
        print(problem, file=sys.stderr)
    return 1 if dataset.problems else 0


def _token_summary(dataset: DatasetFile, model: str, max_length: int, too_long: str = "cut") -> str:
    from tunesmith.core.data import apply_template, length_stats, render_example
    from tunesmith.core.models.sources import load_tokenizer

    tokenizer = load_tokenizer(model)
    apply_template(tokenizer, None)
    lengths = [render_example(r.example, tokenizer, max_length).num_tokens for r in dataset.records]
    return length_stats(lengths, max_length, too_long).summary()


# ----------------------------------------------------------------------------- train
def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a model (from CONFIG.yaml, flags, or both: flags win)",
        description="Fine-tune a model. Each run gets a new folder under --output with its config, "
        "metrics.jsonl, log, checkpoints and the trained adapter. Ctrl-C stops after the current step "
        "and keeps a checkpoint, as does every --checkpoint-minutes of training; --resume RUN_DIR continues "
        "from the newest complete one, even after a crash. A run whose loss turns NaN or diverges stops early "
        "and, like one whose loss ends above where it began, exits with status 1 and says why.",
    )
    p.add_argument("config", nargs="?", help="a run's config.yaml (optional)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="print only the final result")
    add_setting_flags(p)
    p.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from tunesmith.core.training.engine import TrainingRun

    name = setting_namer(args)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc.worded(name)}", file=sys.stderr)
        return 2
    for unusual in config.unusual():
        print(f"warning: {unusual.worded(name)}; training goes ahead as asked.", file=sys.stderr)
    printer = EventPrinter(quiet=args.quiet, debug=args.debug)
    run = TrainingRun(config, printer, resume_from=args.resume, name_setting=name)
    previous = signal.signal(signal.SIGINT, lambda *_: _cancel_once(run))
    try:
        result = run.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    if isinstance(result, Failed) or result.problem:  # a diverged run's adapter is kept; it did not work
        return 1
    return 130 if result.cancelled else 0


def _cancel_once(run: TrainingRun) -> None:
    if run.cancelled:
        raise KeyboardInterrupt
    print("\nStopping after this step and saving a checkpoint (Ctrl-C again to abort)…", file=sys.stderr)
    run.cancel()


class EventPrinter:
    """Prints engine events as short human lines."""

    def __init__(self, quiet: bool = False, debug: bool = False):
        self.quiet, self.debug = quiet, debug

    def __call__(self, event: Event) -> None:
        match event:
            case Failed():
                self._failed(event)
            case Finished():
                self._finished(event)
            case _ if self.quiet:
                return
            case StepMetrics():
                print(format_step(event), flush=True)
            case EvalMetrics():
                print(f"  eval at step {event.step}: loss {event.eval_loss:.4f}", flush=True)
            case CheckpointSaved():
                print(f"  checkpoint saved: {event.path}", flush=True)
            case RunStarted():
                print(
                    f"Training {event.trainable_params:,} of {event.total_params:,} parameters on "
                    f"{event.device} ({event.precision}); {event.total_steps} steps. Run folder: {event.run_dir}",
                    flush=True,
                )
                if event.first_step:
                    print(event.first_step, flush=True)
            case LogLine():
                print(("warning: " if event.level == "warning" else "") + event.message, flush=True)

    def _failed(self, event: Failed) -> None:
        print(f"error: {event.message}", file=sys.stderr)
        if event.hint:
            print(event.hint, file=sys.stderr)
        if self.debug:
            print(event.details, file=sys.stderr)
        if event.last_checkpoint:
            print(f"Last checkpoint kept: {event.last_checkpoint}", file=sys.stderr)

    def _finished(self, event: Finished) -> None:
        state = "stopped" if event.cancelled else "ended" if event.problem else "finished"
        loss = f", final loss {event.final_loss:.4f}" if event.final_loss is not None else ""
        print(f"Run {state} at step {event.step}{loss}.\nRun folder: {event.run_dir}")
        if event.problem:
            print(f"warning: {event.problem}", file=sys.stderr)
        if event.cancelled:
            print(f"Resume with: tunesmith train --resume {event.run_dir}")


def format_step(event: StepMetrics) -> str:
    eta = int(event.eta_seconds)
    return (
        f"step {event.step}/{event.total_steps}  loss {event.loss:.4f}  lr {event.learning_rate:.2e}  "
        f"{event.tokens_per_second:,.0f} tok/s  peak mem {event.peak_allocated_gb:.1f} GiB  "
        f"ETA {eta // 60}m{eta % 60:02d}s"
    )


# ----------------------------------------------------------------------------- demo
def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="fine-tune the embedded demo model on a bundled dataset and compare its answers before/after",
        description="Teaches the embedded SmolLM2-135M-Instruct a new identity (Quill, a pirate-poet "
        "assistant) from a bundled dataset, then prints the base model's and the tuned model's answers to "
        "the same questions. A few minutes on a laptop CPU; seconds on a GPU.",
    )
    p.add_argument("--output", default="runs", help="folder for the run (default: runs)")
    p.add_argument("--epochs", type=float, default=None, help="passes over the sample data")
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from tunesmith.core.demo import run_demo as demo

    return demo(output_dir=args.output, epochs=args.epochs, printer=EventPrinter())
