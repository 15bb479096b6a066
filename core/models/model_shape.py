"""The shape of any model source (layers, widths, vocabulary) from its configuration alone.

A Hugging Face folder's config.json, a GGUF's metadata (the embedded demo model is one), or a hub id's
config.json in the local cache: no weights are read, nothing is converted or downloaded, torch is not
imported.  core.vram's ModelShape is what the memory arithmetic (core.vram, core.context_plan) reads.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from tunesmith.core.models.sources import DEMO, ModelSourceError, resolve_model_source
from tunesmith.core.vram import ModelShape, model_shape


def shape_of(source: str) -> ModelShape:
    """The ModelShape of `source` ("demo", a model folder, a .gguf file or a cached hub id)."""
    found = resolve_model_source(source)
    if found.kind in (DEMO, "gguf"):
        return gguf_shape(Path(found.location))
    if found.kind == "folder":
        return _config_shape(Path(found.location) / "config.json")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(found.location, "config.json")
    if not isinstance(cached, str):
        raise ModelSourceError(
            f"{found.location}: its config.json is not in the local cache. Give the model's folder or a "
            ".gguf file, or load it once in the app or with `tunesmith train` while online."
        )
    return _config_shape(Path(cached))


def _config_shape(path: Path) -> ModelShape:
    try:
        return model_shape(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"{path}: cannot be read as a model's config.json ({exc})") from exc
    except KeyError as exc:
        raise ModelSourceError(f"{path}: has no {exc} field, so the model's size is unknown") from exc


def gguf_shape(path: Path) -> ModelShape:
    """The shape from a GGUF's metadata (`<arch>.block_count`, `<arch>.embedding_length`, ...)."""
    try:
        fields, tensor_names = read_gguf_header(path)
    except (OSError, ValueError, struct.error) as exc:
        raise ModelSourceError(f"{path}: not a readable GGUF file ({exc})") from exc
    arch = str(fields.get("general.architecture", "llama"))
    hidden, heads = fields.get(f"{arch}.embedding_length"), fields.get(f"{arch}.attention.head_count")
    layers = fields.get(f"{arch}.block_count")
    if hidden is None or heads is None or layers is None:
        raise ModelSourceError(
            f"{path}: its metadata does not give the model's size ({arch}.block_count, ...)"
        )
    return ModelShape(
        hidden=int(hidden),
        intermediate=int(fields.get(f"{arch}.feed_forward_length", 4 * int(hidden))),
        layers=int(layers),
        vocab=int(fields.get(f"{arch}.vocab_size") or fields.get("tokenizer.ggml.tokens", 0)),
        heads=int(heads),
        kv_heads=int(fields.get(f"{arch}.attention.head_count_kv", heads)),
        head_dim=int(fields.get(f"{arch}.attention.key_length", int(hidden) // int(heads))),
        tied_embeddings="output.weight" not in tensor_names,
        model_type=_GGUF_MODEL_TYPES.get(arch, arch),
        trained_context=int(fields[f"{arch}.context_length"]) if f"{arch}.context_length" in fields else None,
    )


# GGUF architectures whose transformers model_type is another name (Gemma 3's text model)
_GGUF_MODEL_TYPES = {"gemma3": "gemma3_text"}
# GGUF value types (gguf's GGUFValueType): their struct formats; 8 is a string, 9 an array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def read_gguf_header(path: Path) -> tuple[dict[str, Any], set[str]]:
    """A GGUF's metadata (scalars and strings; an array as its length) and its tensors' names.

    Read straight from the header: the gguf package's reader decodes every token of the vocabulary
    first, seconds for a small model, where this reads what the plan needs in milliseconds."""
    with open(path, "rb") as f:
        data = f.read(64 << 20)  # the header: metadata and tensor infos come before the weights
    if data[:4] != b"GGUF":
        raise ValueError("no GGUF magic number at its start")
    at = 8  # magic, version
    n_tensors, n_fields = struct.unpack_from("<QQ", data, at)
    at += 16

    def string() -> str:
        nonlocal at
        (length,) = struct.unpack_from("<Q", data, at)
        at += 8 + length
        return data[at - length : at].decode("utf-8", "replace")

    def value(kind: int) -> Any:
        nonlocal at
        if kind == 8:
            return string()
        if kind == 9:
            item_kind, count = struct.unpack_from("<IQ", data, at)
            at += 12
            if item_kind in _SCALARS:
                at += count * struct.calcsize(_SCALARS[item_kind])
            else:
                for _ in range(count):
                    value(item_kind)
            return count
        fmt = "<" + _SCALARS[kind]
        (found,) = struct.unpack_from(fmt, data, at)
        at += struct.calcsize(fmt)
        return found

    fields: dict[str, Any] = {}
    for _ in range(n_fields):
        key = string()
        (kind,) = struct.unpack_from("<I", data, at)
        at += 4
        fields[key] = value(kind)
    names = set()
    for _ in range(n_tensors):
        names.add(string())
        (n_dims,) = struct.unpack_from("<I", data, at)
        at += 4 + 8 * n_dims + 4 + 8  # dims, type, offset
    return fields, names
