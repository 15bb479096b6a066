"""`tunesmith eval RUN_DIR`: the evaluation report from the command line.

Registers the sub-command (argparse only: `tunesmith --help` stays instant) and prints one progress
line per step with the ETA, then where the report was written.  Errors reach core.cli's one-line
handler.
"""

from __future__ import annotations

import argparse
import sys


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="write a 'did it work?' report for a finished run (learned, answers, forgot, judge)",
        description=(
            "Compare the base and the tuned model of RUN_DIR: loss on held-out and training rows, answers "
            "side by side with scores, perplexity on general text, and optionally a local judge. Writes "
            "RUN_DIR/eval/<date-time>/report.html and report.json (a new folder each time)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds config.yaml and adapter/)")
    p.add_argument("--prompts", metavar="FILE", help='JSONL of {"prompt": ..., "reference": ...} to answer')
    p.add_argument(
        "--judge", metavar="MODEL.gguf", help="a local GGUF model that judges base vs tuned answers"
    )
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="score at most N rows, prompts and 256-token pieces of the general-text probe per part (quicker)",
    )
    p.add_argument("--split", metavar="FILE", help="held-out rows, for a run that kept none aside")
    p.add_argument("--max-new-tokens", type=int, default=64, help="longest answer, in tokens (default 64)")
    p.set_defaults(handler=run_eval_command)
    return p


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA …"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"ETA {minutes}:{secs:02d}"


def run_eval_command(args: argparse.Namespace) -> int:
    from .runner import EvalOptions, EvalProgress, EvalRun

    if args.limit is not None and args.limit < 1:
        print("error: --limit must be 1 or more", file=sys.stderr)
        return 1
    last = {"line": ""}

    def show(progress: EvalProgress) -> None:
        line = (
            f"[{progress.fraction:4.0%}] {progress.part}: {progress.message} ({_eta(progress.eta_seconds)})"
        )
        if line != last["line"]:
            print(line, flush=True)
            last["line"] = line

    options = EvalOptions(args.prompts, args.judge, args.limit, args.split, args.max_new_tokens)
    folder = EvalRun(args.run_dir, options, show).run()
    print(f"\nThe report is written: open {folder / 'report.html'} in a browser (numbers in report.json).")
    return 0
