"""What the Dataset tab shows, computed off the GUI thread from the engine's data API.

`build_preview` reads a dataset file with the engine, renders the first rows exactly as the model will
see them (chat template applied, trained-on segments marked) and measures token lengths for the
histogram.  Preference rows (DPO/ORPO) show their chosen and their rejected answer; prompt-only rows
(GRPO) show the prompt as the model is asked it, and the reference answer when there is one.  Plain
data in, plain data out: no Qt here, so it runs in a background job and is tested synchronously.  It
knows nothing of widgets.

`DatasetFailure` is what the tab shows when a file cannot be used at all (the reason, every problem,
the columns found for the question/answer step); `raw_line` is a problem's line exactly as the file
holds it.  Tracebacks never reach these: they go to the log.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tunesmith.desktop.logic.template_view import added_system_message

PREVIEW_ROWS = 50  # rows rendered for the preview table
LENGTH_ROWS = 2000  # rows measured for the length histogram (large files are sampled from the start)


@dataclass
class PreviewRow:
    """One record as the model sees it."""

    line: int  # line (or item) number in the file
    segments: list[tuple[str, bool]]  # (text, trained on?); for a pair: prompt and chosen answer
    num_tokens: int  # for a pair, the longer of the two
    truncated: bool
    kind: str = "example"  # "example" (SFT), "pair" (preference) or "prompt" (prompt-only)
    rejected: list[tuple[str, bool]] = field(
        default_factory=list
    )  # a pair's rejected answer (after the prompt)
    answer: str | None = None  # a prompt-only row's reference answer
    # The system message the chat template added although the row has none (the model trains with it).
    added_system: str | None = None

    @property
    def text(self) -> str:
        return "".join(text for text, _trained in self.segments)

    @property
    def rejected_text(self) -> str:
        return "".join(text for text, _trained in self.rejected)

    def summary(self) -> str:
        """One line for the rows table: a pair's two answers; a prompt with its reference answer."""
        if self.kind == "pair":
            chosen = _flat("".join(text for text, trained in self.segments if trained))
            return f"✔ {chosen}   ✘ {_flat(self.rejected_text)}"
        if self.kind == "prompt" and self.answer:
            return f"(answer: {self.answer})  {_flat(self.text)}"
        return _flat(self.text)


def _flat(text: str) -> str:
    return " ".join(text.split())


@dataclass
class DatasetPreview:
    """Everything the Dataset tab displays about one file."""

    path: str
    format: str
    total_rows: int
    usable_rows: int
    problems: list[tuple[int | None, str, str]]  # (line, field, message)
    rows: list[PreviewRow] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    measured_rows: int = 0
    render_error: str = ""  # why rows could not be rendered (e.g. the tokenizer failed to load)
    notes: list[str] = field(default_factory=list)  # worth a word, not errors (a prose .txt as one example)
    columns: dict[str, str] = field(default_factory=dict)  # the question/answer columns read
    fields: list[str] = field(default_factory=list)  # the file's column names


@dataclass
class DatasetFailure:
    """Why a file cannot be used at all, in words, with every problem found and the columns it has."""

    path: str
    message: str
    hint: str = ""
    problems: list[tuple[int | None, str, str]] = field(default_factory=list)  # (line, field, message)
    columns: list[str] = field(default_factory=list)  # offered for "which is the question / answer?"


def describe_failure(path: str, error: BaseException, hint: str = "") -> DatasetFailure:
    """The failure the Dataset tab shows for an error raised while reading `path` (no traceback)."""
    from tunesmith.core.data.validation import CLI_COLUMNS

    problems = [(p.line, str(p.field or ""), str(p.message)) for p in getattr(error, "problems", [])]
    message = (str(error) or type(error).__name__).replace(CLI_COLUMNS, "")  # the tab asks instead
    return DatasetFailure(
        resolve_dataset_path(path), message, hint, problems, list(getattr(error, "columns", []))
    )


RAW_LINE_CHARS = 2000  # a longer line is cut for display


def raw_line(path: str, line: int) -> str:
    """Line `line` of a text dataset exactly as stored (undecodable bytes as \\xNN), or for a JSON list or a
    Parquet file, whose rows are items rather than lines, item `line` written out as JSON.  "" when the
    file or the line is not there."""
    import json
    from pathlib import Path

    file = Path(resolve_dataset_path(path))
    try:
        if file.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(file).slice(line - 1, 1).to_pylist()
            return json.dumps(rows[0], ensure_ascii=False, indent=1, default=str) if rows else ""
        if file.suffix.lower() == ".json":
            item = _json_item(file.read_bytes().decode("utf-8-sig", errors="backslashreplace"), line)
            if item is not None:
                return item
        with file.open(encoding="utf-8-sig", errors="backslashreplace", newline="") as handle:
            found = next(itertools.islice(handle, line - 1, None), "") if line > 0 else ""
    except (OSError, ValueError, ImportError):
        return ""
    text = found.rstrip("\r\n")
    return text if len(text) <= RAW_LINE_CHARS else text[:RAW_LINE_CHARS] + " …"


def _json_item(data: str, number: int) -> str | None:
    """Item `number` of a JSON list (or of the one list in a wrapper object) written out; None when
    the file is not one JSON document (JSON lines, or broken: then lines are what problems count)."""
    import json

    try:
        items = json.loads(data)
    except ValueError:
        return None
    if isinstance(items, dict):
        lists = [value for value in items.values() if isinstance(value, list)]
        items = lists[0] if len(lists) == 1 else None
    if not isinstance(items, list):
        return None
    return json.dumps(items[number - 1], ensure_ascii=False, indent=1) if 0 < number <= len(items) else ""


def resolve_dataset_path(path: str) -> str:
    """'sample' -> the bundled sample file; other paths unchanged."""
    if path in ("", "sample"):
        from tunesmith.core.data import sample_dataset_path

        return str(sample_dataset_path())
    return path


def build_preview(
    path: str,
    fmt: str,
    tokenizer_source: str,
    max_length: int,
    assistant_only_loss: bool,
    tokenizer_cache: dict[str, Any] | None = None,
    template: str | None = None,
    columns: str = "",
) -> DatasetPreview:
    """Load, check, render and measure a dataset file.  Raises the engine's errors for unreadable files.
    `columns` ("question=COL,answer=COL") names a table's question and answer columns."""
    from tunesmith.core import data as core_data

    real_path = resolve_dataset_path(path)
    dataset = core_data.load_dataset_file(real_path, fmt=fmt, columns=columns)
    preview = DatasetPreview(
        path=str(dataset.path),
        format=str(dataset.format),
        total_rows=int(dataset.total_rows),
        usable_rows=int(dataset.usable_rows),
        problems=[(p.line, str(p.field or ""), str(p.message)) for p in dataset.problems],
        notes=list(dataset.notes),
        columns=dict(dataset.columns),
        fields=list(dataset.fields),
    )
    try:
        tokenizer = _tokenizer(tokenizer_source, tokenizer_cache)
        core_data.apply_template(tokenizer, template)
    except Exception as exc:  # noqa: BLE001 - the file is still worth showing without rendering
        preview.render_error = f"Could not load the model's tokenizer to render rows: {exc}"
        return preview
    for index, record in enumerate(list(dataset.records)[:LENGTH_ROWS]):
        try:
            row = render_row(record.line, record.example, tokenizer, max_length, assistant_only_loss)
        except Exception as exc:  # noqa: BLE001 - one bad row must not hide the others
            if not preview.render_error:
                preview.render_error = f"Line {record.line} cannot be previewed: {exc}"
            continue
        preview.lengths.append(row.num_tokens)
        if index < PREVIEW_ROWS:
            preview.rows.append(row)
    preview.measured_rows = len(preview.lengths)
    if preview.lengths:
        preview.stats = core_data.length_stats(preview.lengths, max_length).to_dict()
    return preview


def render_row(
    line: int, example: dict[str, Any], tokenizer: Any, max_length: int, assistant_only_loss: bool
) -> PreviewRow:
    """One canonical example (core.data.formats) rendered for the preview, whatever its kind."""

    row = _render_row(line, example, tokenizer, max_length, assistant_only_loss)
    written = example.get("messages") or example.get("prompt") or []
    row.added_system = added_system_message(row.text, list(written) if isinstance(written, list) else [])
    return row


def _render_row(
    line: int, example: dict[str, Any], tokenizer: Any, max_length: int, assistant_only_loss: bool
) -> PreviewRow:
    from tunesmith.core import data as core_data

    if "chosen" in example:
        chosen = _rendered(core_data.render_example(previewable(example), tokenizer, max_length, True))
        rejected_example = {"messages": [*example["prompt"], *example["rejected"]]}
        rejected = _rendered(core_data.render_example(rejected_example, tokenizer, max_length, True))
        return PreviewRow(
            line,
            chosen.segments,
            max(chosen.num_tokens, rejected.num_tokens),
            chosen.truncated or rejected.truncated,
            kind="pair",
            rejected=_answer_part(rejected.segments),
        )
    if "prompt" in example and "messages" not in example:
        text = core_data.render_prompt(list(example["prompt"]), tokenizer)
        num_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        return PreviewRow(
            line, [(text, False)], num_tokens, False, kind="prompt", answer=example.get("answer")
        )
    return _rendered(core_data.render_example(example, tokenizer, max_length, assistant_only_loss), line)


def _rendered(rendered: Any, line: int = 0) -> PreviewRow:
    segments = [(str(text), bool(trained)) for text, trained in rendered.segments]
    return PreviewRow(line, segments, int(rendered.num_tokens), bool(rendered.truncated))


def _answer_part(segments: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """A pair's rejected answer without the prompt it shares with the chosen one: the segments from the
    first trained-on one (the reply) on.  (A shared text prefix would also eat the answers' shared
    first words.)"""
    first = next((i for i, (_text, trained) in enumerate(segments) if trained), 0)
    return segments[first:]


def previewable(example: dict[str, Any]) -> dict[str, Any]:
    """The conversation a row stands for: preference rows with their chosen answer, prompt-only rows
    as the prompt the model will answer; conversation and text rows as they are."""
    if "messages" in example or "text" in example:
        return example
    if "chosen" in example:
        return {"messages": [*example["prompt"], *example["chosen"]]}
    return {"messages": list(example.get("prompt", []))}


def _tokenizer(source: str, cache: dict[str, Any] | None) -> Any:
    if cache is not None and source in cache:
        return cache[source]
    from tunesmith.core.models.sources import load_tokenizer

    tokenizer = load_tokenizer(source)
    if cache is not None:
        cache[source] = tokenizer
    return tokenizer


def histogram(lengths: list[int], bins: int = 30) -> tuple[list[float], list[int]]:
    """Bin edges (bins + 1 of them) and counts for a token-length histogram."""
    if not lengths:
        return [0.0, 1.0], [0]
    low, high = min(lengths), max(lengths)
    if low == high:
        return [low - 0.5, high + 0.5], [len(lengths)]
    width = (high - low) / bins
    edges = [low + i * width for i in range(bins + 1)]
    counts = [0] * bins
    for value in lengths:
        counts[min(int((value - low) / width), bins - 1)] += 1
    return edges, counts
