"""Look at a model's files before loading it: present, of the right kind, and whole.

A download cut short leaves a safetensors or GGUF file that loads halfway and then fails with a
library's words ("SafetensorError: Error while deserializing header: incomplete metadata").  Reading
only the headers (a few KB, no tensors) finds that in milliseconds and says what to do.  Hub ids are
not checked here: their files are fetched when the model loads.  Knows the two file formats' headers;
nothing of transformers.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tunesmith.core.models.sources import ModelSourceError, resolve_model_source

DAMAGED = "this model's weights file is incomplete or damaged: download it again"
_GGUF_MAGIC = b"GGUF"


def check_model_files(source: str) -> None:
    """Raise ModelSourceError when the model's files are missing, of the wrong kind or cut short."""
    found = resolve_model_source(source)  # a missing path or a folder without config.json raises here
    if found.kind == "gguf":
        gguf_problem(Path(found.location))
    elif found.kind == "folder":
        for weights in _weight_files(Path(found.location)):
            safetensors_problem(weights)


def gguf_problem(path: Path) -> None:
    """Only the header's magic and version: walking a GGUF's metadata in Python takes seconds (a
    tokenizer's vocabulary is an array of strings), and a cut-short file fails its conversion anyway."""
    with path.open("rb") as handle:
        header = handle.read(8)
    if len(header) < 8 or header[:4] != _GGUF_MAGIC:
        raise ModelSourceError(f"{path}: not a GGUF file (it does not start with GGUF's header): {DAMAGED}")
    (version,) = struct.unpack("<I", header[4:])
    if version not in (1, 2, 3):
        raise ModelSourceError(f"{path}: GGUF version {version}, which this Tunesmith cannot read")


def safetensors_problem(path: Path) -> None:
    """A safetensors file is an 8-byte header length, a JSON header, then the tensors' bytes."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ModelSourceError(f"{path}: {DAMAGED}")
        (header_size,) = struct.unpack("<Q", prefix)
        if 8 + header_size > size:
            raise ModelSourceError(f"{path}: {DAMAGED}")
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, ValueError):
            raise ModelSourceError(f"{path}: {DAMAGED}") from None
    ends = [
        entry["data_offsets"][1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry
    ]
    if 8 + header_size + max(ends, default=0) > size:
        raise ModelSourceError(f"{path}: {DAMAGED}")


def _weight_files(folder: Path) -> list[Path]:
    """The folder's safetensors files; the shards an index names must all be there."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise ModelSourceError(f"{index}: {DAMAGED}") from None
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise ModelSourceError(
                f"{folder / missing[0]} is missing ({len(missing)} of {len(shards)} weight files): "
                "download the model again"
            )
        return [folder / name for name in shards]
    return sorted(folder.glob("*.safetensors"))
