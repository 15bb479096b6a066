"""Datasets: read files, detect and check formats, render with chat templates, prepare for training."""

from pathlib import Path

from tunesmith.core.data.formats import (
    FORMAT_HOLDS,
    FORMAT_LABELS,
    FORMATS,
    METHOD_FORMAT,
    detect_format,
    methods_for,
    normalize,
)
from tunesmith.core.data.readers import Problem
from tunesmith.core.data.stats import LengthStats, length_stats
from tunesmith.core.data.templates import RenderedExample, apply_template, render_example, render_prompt
from tunesmith.core.data.validation import DatasetError, DatasetFile, Record, load_dataset_file, require_clean


def sample_dataset_path(name: str = "identity.jsonl") -> Path:
    """A dataset bundled with Tunesmith (the default one teaches the demo model a new identity)."""
    from importlib.resources import files

    return Path(str(files("tunesmith.resources") / "samples" / name))


__all__ = [
    "FORMATS",
    "FORMAT_HOLDS",
    "FORMAT_LABELS",
    "METHOD_FORMAT",
    "DatasetError",
    "DatasetFile",
    "LengthStats",
    "Problem",
    "Record",
    "RenderedExample",
    "apply_template",
    "detect_format",
    "length_stats",
    "load_dataset_file",
    "methods_for",
    "normalize",
    "render_example",
    "render_prompt",
    "require_clean",
    "sample_dataset_path",
]
