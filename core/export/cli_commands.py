"""`tunesmith export` and `tunesmith chat`: argparse sub-commands that the main CLI registers.

Thin layers over `export_run` and the chat sessions; they print for people (this is the CLI) and
return exit codes: 0 success, 1 a failure with a message, 2 bad arguments (argparse's own code).
A crash of llama.cpp (which runs in a child process) is such a failure: its words, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tunesmith.core.native import NativeCrash

from .api import export_run
from .result import EXPORT_FORMATS, GGUF_QUANTS, ExportError

log = logging.getLogger(__name__)


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a finished run as a LoRA adapter, a merged model or a GGUF",
        description="Export RUN_DIR's tuned model. GGUF exports are checked against the trained model.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds config.yaml and adapter/)")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=list(EXPORT_FORMATS),
        required=True,
        help="; ".join(f"{name}: {words}" for name, words in EXPORT_FORMATS.items()),
    )
    p.add_argument(
        "--quant",
        choices=list(GGUF_QUANTS),
        default=None,
        help="GGUF type (default f16): " + "; ".join(GGUF_QUANTS.values()),
    )
    p.add_argument("--output", default=None, help="where to write (default: RUN_DIR/exports/...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--system", default=None, help="system prompt for the Ollama Modelfile")
    p.add_argument("--no-check", action="store_true", help="skip the check of the GGUF (not advised)")
    p.set_defaults(handler=run_export_command)
    return p


def run_export_command(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress line is the one to read

    def progress(fraction: float, message: str) -> None:
        print(f"\r[{fraction:5.0%}] {message[:70]:<70}", end="", file=sys.stderr, flush=True)

    try:
        result = export_run(
            args.run_dir,
            args.fmt,
            quant=args.quant,
            output=args.output,
            overwrite=args.overwrite,
            on_progress=progress,
            check=not args.no_check,
            system_prompt=args.system,
        )
    except (ExportError, NativeCrash) as exc:
        print(f"\nexport failed: {exc}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    print(result.summary())
    return 0


def add_chat_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("chat", help="chat with a GGUF model (interactive, or one --prompt)")
    p.add_argument("model", metavar="MODEL.gguf", help="the GGUF file")
    p.add_argument("--prompt", default=None, help="answer this one message, print, and exit")
    p.add_argument("--lora", default=None, metavar="ADAPTER.gguf", help="LoRA adapter GGUF to apply")
    p.add_argument("--lora-scale", type=float, default=1.0)
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--ctx", type=int, default=2048, help="context length in tokens")
    p.set_defaults(handler=run_chat_command)
    return p


def run_chat_command(args: argparse.Namespace) -> int:
    from tunesmith.core.chat.session import ChatSettings, never

    if not Path(args.model).is_file():
        print(f"chat: {args.model}: no such file", file=sys.stderr)
        return 1
    try:
        from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    except ImportError:
        print("chat needs llama-cpp-python: pip install 'tunesmith[chat]'", file=sys.stderr)
        return 1
    settings = ChatSettings(
        system_prompt=args.system,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_tokens,
        context_length=args.ctx,
    )
    try:
        session = LlamaCppChat(args.model, lora_path=args.lora, lora_scale=args.lora_scale, n_ctx=args.ctx)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        print(f"chat: cannot open {args.model}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.prompt is not None:
            for piece in session.stream([{"role": "user", "content": args.prompt}], settings, never):
                print(piece, end="", flush=True)
            print()
            return 0
        return _interactive(session, settings)
    except NativeCrash as exc:
        print(f"\nchat: {exc}", file=sys.stderr)
        return 1
    finally:
        session.close()


def _interactive(session, settings) -> int:
    from tunesmith.core.chat.session import never

    history: list[dict] = []
    print("Type a message; an empty line or Ctrl-D quits.", file=sys.stderr)
    while True:
        try:
            text = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not text:
            return 0
        history.append({"role": "user", "content": text})
        answer = []
        try:
            for piece in session.stream(history, settings, never):
                answer.append(piece)
                print(piece, end="", flush=True)
        except KeyboardInterrupt:
            pass  # Ctrl-C stops this answer, keeps the conversation
        except NativeCrash as exc:  # the next message starts a new llama.cpp process
            print(f"\n{exc}", file=sys.stderr)
            history.pop()
            continue
        print()
        history.append({"role": "assistant", "content": "".join(answer)})
