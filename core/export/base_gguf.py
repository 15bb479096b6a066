"""The untuned base model as a GGUF written by our own converter, made once and kept in the cache.

Chatting with "base GGUF + LoRA adapter GGUF" (and the base side of side-by-side chat) needs a base
GGUF that behaves like the base model.  The source GGUF a run may come from is not good enough: the
embedded demo model's own Q4_1 file answers simple questions wrongly in llama.cpp (4-bit arithmetic),
so here the base weights are written in F16 (or Q8_0) by `gguf_writer`, like every export.

The file lives in Tunesmith's cache (`cache_dir()/gguf`), never among the user's files, under a name
keyed on the base weights and the tokenizer (a run's saved tokenizer may carry a changed chat
template), so runs on the same base share it.  It is written under a temporary name and renamed when
complete.  Knows the run folder layout and the cache; not Qt, not llama.cpp.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from tunesmith.core.paths import cache_dir

from .result import ExportError, ProgressFn, report
from .runs import open_run

log = logging.getLogger(__name__)

BASE_TYPES = ("f16", "q8_0")
# The files that decide what the tokenizer and chat template of the GGUF will be.
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)


def run_base_gguf(
    run_dir: str | os.PathLike[str], out_type: str = "f16", on_progress: ProgressFn | None = None
) -> Path:
    """The base GGUF for a finished run: its base model's weights with the run's tokenizer and template."""
    run = open_run(run_dir)
    return converted_base_gguf(run.config.model.source, run.tokenizer_dir(), out_type, on_progress)


def converted_base_gguf(
    source: str,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    out_type: str = "f16",
    on_progress: ProgressFn | None = None,
) -> Path:
    """A GGUF of model `source` ("demo", a folder, a .gguf, a hub id), converted once into the cache.

    `tokenizer_dir` defaults to the model's own folder.  Raises ExportError with a plain message
    (unsupported architecture, no disk space, unreadable model).
    """
    if out_type not in BASE_TYPES:
        raise ExportError(f"a base GGUF for chat is written as {' or '.join(BASE_TYPES)}, not {out_type!r}")
    model_dir = _dense_dir(source)
    tok_dir = Path(tokenizer_dir) if tokenizer_dir else model_dir
    key = _key(model_dir, tok_dir, out_type)
    target = cache_dir() / "gguf" / f"{_stem(model_dir)}-base-{key}-{out_type}.gguf"
    if target.is_file():
        return target
    report(on_progress, 0.0, "writing the base model as GGUF (once)")
    _write(source, model_dir, tok_dir, target, out_type, on_progress)
    return target


def _dense_dir(source: str) -> Path:
    from tunesmith.core.models.sources import ModelSourceError, resolve_dense_model_dir

    try:
        return Path(resolve_dense_model_dir(source))
    except ModelSourceError as exc:
        raise ExportError(f"the base model cannot be found: {exc}") from exc


def _stem(model_dir: Path) -> str:
    # The demo's cached folder is named after its Q4_1 source; that suffix would mislabel an F16 file.
    return model_dir.name.split(".Q4_1")[0][:60]


def _key(model_dir: Path, tok_dir: Path, out_type: str) -> str:
    """Changes when the weights (by size and time) or the tokenizer files (by content) change."""
    digest = hashlib.sha1(f"{model_dir.resolve()}|{out_type}".encode())
    for path in sorted(model_dir.glob("*.safetensors")) + [model_dir / "config.json"]:
        if path.is_file():
            stat = path.stat()
            digest.update(f"|{path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    for name in _TOKENIZER_FILES:
        path = tok_dir / name
        if path.is_file():
            digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _write(
    source: str, model_dir: Path, tok_dir: Path, target: Path, out_type: str, on_progress: ProgressFn | None
) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    from .gguf_arch import arch_for_config
    from .gguf_export import gguf_string
    from .gguf_writer import write_gguf

    arch_for_config(AutoConfig.from_pretrained(str(model_dir)))  # refuse before loading any weights
    from tunesmith.core.models.sources import resolve_model_source

    found = resolve_model_source(source)
    # Pre-tokenizer name from the source GGUF when there is one (STACK.md pitfall 2).
    pre = gguf_string(Path(found.location), "tokenizer.ggml.pre") if found.kind in ("demo", "gguf") else None
    # A name of this process's own: two converting processes never write the same temporary file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="auto")
        write_gguf(
            model.state_dict(),
            model.config,
            tok_dir,
            tmp,
            out_type,
            pre,
            f"{_stem(model_dir)}-base",
            lambda f, m: report(on_progress, 0.05 + 0.9 * f, "base model: " + m),
        )
        os.replace(tmp, target)  # atomic; the cache is ours, so a concurrent identical file may be replaced
    except OSError as exc:
        raise ExportError(
            f"could not write the base GGUF {target}: {exc.strerror or exc}. "
            f"Free some disk space in {target.parent} (or point TUNESMITH_CACHE elsewhere) and try again."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote base GGUF %s", target)
