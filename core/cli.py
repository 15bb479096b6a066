"""The headless CLI: `tunesmith info | data check | train | demo | export | chat`.

A thin layer over the same engine API the app uses.  Every command prints one clear message on error
(exit status 1; 2 for bad usage) instead of a traceback; `--debug` shows the traceback.  Heavy
libraries are imported inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from tunesmith.core import cli_commands, plan_cli

EPILOG = """examples:
  tunesmith demo                                  fine-tune the embedded model, compare answers
  tunesmith info                                  what this machine can train on
  tunesmith data import whatsapp chat.zip --me Ann --scrub --out my_chats.jsonl   your chats as a dataset
  tunesmith data check my_chats.jsonl             check a dataset before training
  tunesmith plan --model ./Llama-3.1-8B --vram-gib 24   the longest context a 24 GB card can train
  tunesmith train --data my_chats.jsonl --max-steps 100
  tunesmith train runs/my-run/config.yaml         repeat a run from its config
  tunesmith train --resume runs/my-run            continue a stopped run
  tunesmith export runs/my-run --format gguf --quant q4_k_m
  tunesmith chat runs/my-run/exports/model-q4_k_m.gguf
  tunesmith eval runs/my-run                      did it work? a report: learned, answers, forgot
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunesmith",
        description="Fine-tune an open LLM on your own data, on your own machine, and chat with it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and library logs")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation: load the demo model, train 2 steps, export a GGUF, chat once",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_commands.add_info(sub)
    cli_commands.add_data(sub)
    cli_commands.add_train(sub)
    cli_commands.add_demo(sub)
    plan_cli.add_plan(sub)
    _add_export_and_chat(sub)
    from tunesmith.core.evaluation.cli import add_eval_parser  # argparse only: --help stays instant

    add_eval_parser(sub)
    return parser


def _add_export_and_chat(sub: argparse._SubParsersAction) -> None:
    """Export and chat live in core.export; the CLI only registers their parsers."""
    try:
        from tunesmith.core.export import cli_commands as export_cli
    except ImportError:
        return
    export_cli.add_export_parser(sub)
    export_cli.add_chat_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    _configure_logging(args.debug)
    if args.self_test:
        args.handler = _self_test
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line instead of a traceback
        if args.debug:
            traceback.print_exc()
        print(f"error: {cli_commands.describe_error(exc)}", file=sys.stderr)
        return 1


def _self_test(args: argparse.Namespace) -> int:
    from tunesmith.core.selftest import run_self_test

    return run_self_test()


def _configure_logging(debug: bool) -> None:
    import os
    import warnings

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # The run's log file takes INFO from the tunesmith logger; the console shows only warnings
    # (the CLI prints progress itself, from events).
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if debug else logging.WARNING)
        # A failed run's record (with its traceback) goes to the run's log; the CLI prints the Failed
        # event's words instead, and its traceback too under --debug.
        handler.addFilter(_not_reported_as_event)
    if not debug:
        warnings.filterwarnings("ignore")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def _not_reported_as_event(record: logging.LogRecord) -> bool:
    return not getattr(record, "reported_as_event", False)


if __name__ == "__main__":
    sys.exit(main())
