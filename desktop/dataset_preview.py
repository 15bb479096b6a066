"""What the Dataset tab shows, computed off the GUI thread from the engine's data API.

`build_preview` reads a dataset file with the engine, renders the first rows exactly as the model will
see them (chat template applied, trained-on segments marked) and measures token lengths for the
histogram.  Plain data in, plain data out: no Qt here, so it runs in a background job and is tested
synchronously.  It knows nothing of widgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PREVIEW_ROWS = 50  # rows rendered for the preview table
LENGTH_ROWS = 2000  # rows measured for the length histogram (large files are sampled from the start)


@dataclass
class PreviewRow:
    """One record as the model sees it."""

    line: int  # line (or item) number in the file
    segments: list[tuple[str, bool]]  # (text, trained on?)
    num_tokens: int
    truncated: bool

    @property
    def text(self) -> str:
        return "".join(text for text, _trained in self.segments)


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
) -> DatasetPreview:
    """Load, check, render and measure a dataset file.  Raises the engine's errors for unreadable files."""
    from tunesmith.core import data as core_data

    real_path = resolve_dataset_path(path)
    dataset = core_data.load_dataset_file(real_path, fmt=fmt)
    preview = DatasetPreview(
        path=str(dataset.path),
        format=str(dataset.format),
        total_rows=int(dataset.total_rows),
        usable_rows=int(dataset.usable_rows),
        problems=[(p.line, str(p.field or ""), str(p.message)) for p in dataset.problems],
    )
    try:
        tokenizer = _tokenizer(tokenizer_source, tokenizer_cache)
        core_data.apply_template(tokenizer, template)
    except Exception as exc:  # noqa: BLE001 - the file is still worth showing without rendering
        preview.render_error = f"Could not load the model's tokenizer to render rows: {exc}"
        return preview
    for index, record in enumerate(list(dataset.records)[:LENGTH_ROWS]):
        try:
            rendered = core_data.render_example(
                previewable(record.example), tokenizer, max_length, assistant_only_loss
            )
        except Exception as exc:  # noqa: BLE001 - one bad row must not hide the others
            if not preview.render_error:
                preview.render_error = f"Line {record.line} cannot be previewed: {exc}"
            continue
        preview.lengths.append(int(rendered.num_tokens))
        if index < PREVIEW_ROWS:
            segments = [(str(text), bool(trained)) for text, trained in rendered.segments]
            row = PreviewRow(record.line, segments, int(rendered.num_tokens), bool(rendered.truncated))
            preview.rows.append(row)
    preview.measured_rows = len(preview.lengths)
    if preview.lengths:
        preview.stats = core_data.length_stats(preview.lengths, max_length).to_dict()
    return preview


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
