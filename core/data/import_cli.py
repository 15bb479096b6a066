"""`tunesmith data import SOURCE FILE... --out OUT.jsonl`: the CLI twin of the Dataset tab's Import wizard.

Registers the sub-command under `data` and turns its flags into ImportOptions; the reading, scrubbing and
writing are the importers' (core.data.importers).  Prints each file's report, the summary and the next
step.  An existing --out is refused before anything is read (nothing is ever overwritten unless
--overwrite says so, and never an input file).  Heavy libraries (pypdf, python-docx, a model's
tokenizer) load only when the files need them.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from tunesmith.core.data.importers import SOURCES
from tunesmith.core.data.importers.common import ImportOptions, ImportProblem

CSV_ROLES = ("time", "author", "text")
_OUT_SUFFIXES = (".jsonl", ".ndjson")


def add_import_parser(data_sub: argparse._SubParsersAction) -> None:
    """`data import`, next to `data check`."""
    defaults = ImportOptions()
    sources = "\n".join(f"  {name:9} {words}" for name, words in SOURCES.items())
    p = data_sub.add_parser(
        "import",
        help="turn chat exports or documents into a dataset file (offline; --scrub hides personal data)",
        description=textwrap.fill(
            "Read chat exports (chats become conversations in which your messages, --me, are the answers "
            "the model learns) or documents (plain-text chunks for continued pre-training) and write one "
            "new .jsonl dataset. Nothing leaves this machine."
        )
        + f"\n\nsources:\n{sources}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", choices=list(SOURCES), help="what the files are (see above)")
    p.add_argument("files", nargs="+", metavar="FILE", help="the export files or documents")
    p.add_argument("--out", required=True, metavar="OUT.jsonl", help="the new dataset file to write")
    p.add_argument("--me", help="your name as the chat writes it: your messages become the assistant's")
    p.add_argument(
        "--scrub",
        action="store_true",
        help="replace e-mail addresses, phone numbers, URLs, IBANs and card numbers with placeholders",
    )
    p.add_argument(
        "--scrub-name",
        action="append",
        default=[],
        metavar="NAME",
        help="also replace this name with a placeholder (repeat for several; implies --scrub)",
    )
    p.add_argument(
        "--gap-minutes",
        type=float,
        default=defaults.gap_minutes,
        help=f"start a new conversation after this much silence (default {defaults.gap_minutes:g})",
    )
    p.add_argument(
        "--group-names",
        choices=("keep", "drop"),
        default=defaults.group_names,
        help="group chats: keep each other speaker's name before their words, or drop it (default keep)",
    )
    p.add_argument(
        "--columns",
        default="",
        metavar="time=COL,author=COL,text=COL",
        help="csv: which columns hold the time, the author and the text (default: found by their names)",
    )
    p.add_argument(
        "--model", help="docs: the model whose tokenizer sizes the chunks (default: a word estimate)"
    )
    p.add_argument(
        "--max-length", type=int, default=512, help="docs: the training max length in tokens (default 512)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(handler=run_data_import)


def parse_csv_columns(text: str) -> dict[str, str] | None:
    """ "time=Date,author=From,text=Body" -> {"time": "Date", ...}; "" -> None (found by their names).
    The time may be left out (then no conversation is split at silences)."""
    mapping: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        role, sep, column = (item.strip() for item in part.partition("="))
        if not sep or role not in CSV_ROLES or not column:
            raise ImportProblem(
                f"--columns: '{part}' is not ROLE=COLUMN; write time=COLUMN,author=COLUMN,text=COLUMN "
                "with your table's column names"
            )
        mapping[role] = column
    if mapping and not {"author", "text"} <= set(mapping):
        raise ImportProblem("--columns: name at least the author and the text columns (author=COL,text=COL)")
    return mapping or None


def check_out(out: Path, inputs: list[str], overwrite: bool) -> None:
    """Refuse an output that would replace a file, before anything is read."""
    if out.suffix.lower() not in _OUT_SUFFIXES:
        raise ImportProblem(f"--out {out}: give the new dataset a .jsonl name (for example {out.stem}.jsonl)")
    if any(Path(path).resolve() == out.resolve() for path in inputs):
        raise ImportProblem(
            f"--out {out}: this is one of the files to import; write the dataset to a new file"
        )
    if out.exists() and not overwrite:
        raise ImportProblem(
            f"--out {out}: already exists and was left as it is. Choose a new name, or add --overwrite."
        )


def run_data_import(args: argparse.Namespace) -> int:
    from tunesmith.core.data.importers import import_files, write_jsonl

    out = Path(args.out).expanduser()
    check_out(out, args.files, args.overwrite)
    options = ImportOptions(
        me=args.me,
        scrub=args.scrub or bool(args.scrub_name),
        scrub_names=tuple(args.scrub_name),
        gap_minutes=args.gap_minutes,
        group_names=args.group_names,
        csv_columns=parse_csv_columns(args.columns),
        # The engine adds the end-of-text token to every text row: a chunk gets max length less one.
        max_tokens=args.max_length - 1,
        token_counter=_token_counter(args.model) if args.source == "docs" and args.model else None,
    )
    result = import_files(args.source, args.files, options)
    write_jsonl(result, out, overwrite=args.overwrite)
    print(result.summary())
    if args.source == "docs" and not args.model:
        print("note: chunk sizes were estimated from word counts; --model MODEL counts with its tokenizer.")
    print(f"Wrote {len(result.rows)} rows to {out}.")
    print(f"Next: tunesmith data check {out}\n      tunesmith train --data {out}")
    return 0


def _token_counter(model: str):
    """Count tokens as the model's tokenizer does (no special tokens: the engine adds those itself)."""
    from tunesmith.core.models.sources import load_tokenizer

    tokenizer = load_tokenizer(model)
    return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)
