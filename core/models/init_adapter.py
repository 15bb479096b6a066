"""Start a run from an earlier LoRA adapter (`lora.init_adapter`) instead of a fresh one.

The Chat tab's feedback loop trains a DPO run that continues the adapter a run already made, and
`tunesmith train --init-adapter RUN_DIR` does the same from the command line.  Given a run folder or an
adapter folder, this module finds the adapter (safetensors only: a pickled `.bin` can run code when
loaded), checks before anything loads that it was made for the run's model (the earlier run's
config.yaml names it), takes over its LoRA shape (rank, alpha, layers) into the run's config, and after
the base model loaded, checks every adapter tensor's shape against the model's layers and loads it as
the trainable starting point.  Mismatches are refused in words that name both models.

It knows peft's adapter files; nothing of trainers or datasets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tunesmith.core.config import ConfigError, LoraSettings, RunConfig

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_SETTING = "lora.init_adapter"
_NAMED = (_SETTING, "model.source", "lora.enabled")
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class InitAdapter:
    """An adapter to start from, and what is known of the model it was trained on."""

    folder: Path  # holds adapter_config.json and adapter_model.safetensors
    settings: dict[str, Any]  # adapter_config.json
    base_source: str | None  # the model.source of the run that trained it (None: not a run's adapter)

    @property
    def trained_on(self) -> str:
        """The model it was trained on, in words (the run's model source, else peft's record of it)."""
        return self.base_source or str(self.settings.get("base_model_name_or_path") or "an unknown model")


def find_init_adapter(path: str) -> InitAdapter:
    """RUN_DIR (its adapter/ folder) or an adapter folder -> the adapter; ConfigError naming the setting."""
    given = Path(path).expanduser()
    if not given.is_dir():
        raise _error(
            f"{given}: no such folder. Give a run folder (it has adapter/ in it) or an adapter folder."
        )
    folder = given / "adapter" if (given / "adapter" / ADAPTER_CONFIG).is_file() else given
    if not (folder / ADAPTER_CONFIG).is_file():
        what = "a run folder that saved no adapter" if (given / "config.yaml").is_file() else "not an adapter"
        raise _error(
            f"{given}: {what} (no {ADAPTER_CONFIG}). Give a finished run's folder, or the adapter folder "
            "in it."
        )
    if not (folder / ADAPTER_WEIGHTS).is_file():
        pickled = " Its adapter_model.bin is not read: a pickled file can run code when loaded." * (
            (folder / "adapter_model.bin").is_file()
        )
        raise _error(f"{folder}: no {ADAPTER_WEIGHTS}.{pickled} Save the adapter as safetensors.")
    try:
        settings = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _error(f"{folder / ADAPTER_CONFIG}: not readable JSON ({exc})") from None
    if not isinstance(settings, dict) or str(settings.get("peft_type", "")).upper() != "LORA":
        raise _error(f"{folder}: not a LoRA adapter (peft_type {settings.get('peft_type')!r}).")
    return InitAdapter(folder, settings, _run_model_source(folder))


def check_init_adapter(config: RunConfig) -> list[str]:
    """Before the model loads: the adapter exists, was made for this run's model, and its LoRA shape
    becomes the run's (so config.yaml records what is trained).  Returns notes for the run's log."""
    lora = config.lora
    if not lora.init_adapter:
        return []
    if not lora.enabled:
        raise ConfigError(
            "{lora.init_adapter} continues a LoRA adapter, so LoRA must be on (not {lora.enabled}).", _NAMED
        )
    found = find_init_adapter(lora.init_adapter)
    if found.base_source is not None and not _same_model(found.base_source, config.model.source):
        raise ConfigError(
            "{lora.init_adapter}: the adapter in "
            + f"{found.folder} was trained on {found.base_source}, but "
            "this run's model ({model.source}) is "
            + f"{config.model.source}. Train on {found.base_source}, or "
            "leave {lora.init_adapter} empty for a fresh adapter.",
            _NAMED,
        )
    return _take_shape(lora, found)


def load_init_adapter(model: PreTrainedModel, lora: LoraSettings, model_name: str) -> PeftModel:
    """The base model with the adapter loaded as its trainable LoRA (after every tensor's shape is
    checked against the model's layers: peft's own error is a wall of state-dict sizes)."""
    from peft import LoraConfig, PeftModel

    found = find_init_adapter(str(lora.init_adapter))
    _check_shapes(model, found, model_name)
    settings = LoraConfig.from_pretrained(str(found.folder))
    settings.lora_dropout = lora.dropout  # a training choice of this run, not part of the adapter's shape
    return PeftModel.from_pretrained(model, str(found.folder), is_trainable=True, config=settings)


def _check_shapes(model: PreTrainedModel, found: InitAdapter, model_name: str) -> None:
    from safetensors import safe_open

    layers = dict(model.named_modules())
    with safe_open(str(found.folder / ADAPTER_WEIGHTS), framework="pt") as weights:
        for key in weights.keys():  # noqa: SIM118 - safe_open is not iterable
            name, part = _layer_of(key)
            if part is None:
                continue  # not a LoRA matrix (e.g. a saved embedding row): peft loads it as it is
            layer = layers.get(name)
            shape = tuple(weights.get_slice(key).get_shape())
            wanted_in, wanted_out = getattr(layer, "in_features", None), getattr(layer, "out_features", None)
            if layer is None:
                problem = f"its layer {name} does not exist in this model"
            elif part == "lora_A" and shape[1:] != (wanted_in,):
                problem = f"its layer {name} takes {shape[1]} inputs, this model's takes {wanted_in}"
            elif part == "lora_B" and shape[:1] != (wanted_out,):
                problem = f"its layer {name} gives {shape[0]} outputs, this model's gives {wanted_out}"
            else:
                continue
            raise ConfigError(
                "{lora.init_adapter}: the adapter in "
                + f"{found.folder} was made for {found.trained_on}, not for this run's model "
                + "({model.source}) "
                + f"{model_name}: {problem}. Train on the model the adapter was made for, or leave "
                + "{lora.init_adapter} empty for a fresh adapter.",
                _NAMED,
            )


def _layer_of(key: str) -> tuple[str, str | None]:
    """'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' -> ('model.layers.0.self_attn.q_proj',
    'lora_A'); (key, None) for anything that is not a LoRA matrix."""
    stem = key.removeprefix(_PEFT_PREFIX).removesuffix(".weight")
    for part in ("lora_A", "lora_B"):
        if stem.endswith("." + part):
            return stem.removesuffix("." + part), part
    return key, None


def _take_shape(lora: LoraSettings, found: InitAdapter) -> list[str]:
    """The run trains the adapter's own rank, alpha and layers; say which of the run's settings changed."""
    settings = found.settings
    targets = settings.get("target_modules") or lora.target_modules
    targets = list(targets) if isinstance(targets, list) else [str(targets)]  # a str is peft's regex
    if sorted(targets) == sorted(lora.target_modules):
        targets = lora.target_modules  # the same layers (peft saves them as a set, in any order)
    shape = {
        "r": int(settings.get("r", lora.r)),
        "alpha": int(settings.get("lora_alpha", lora.alpha)),
        "target_modules": targets,
        "use_rslora": bool(settings.get("use_rslora", False)),
    }
    changed = [
        f"{name} {getattr(lora, name)} -> {value}"
        for name, value in shape.items()
        if getattr(lora, name) != value
    ]
    for name, value in shape.items():
        setattr(lora, name, value)
    note = f"Starting from the adapter in {found.folder} (trained on {found.trained_on})"
    return [note + (f"; its LoRA shape replaces the run's: {', '.join(changed)}" if changed else "")]


def _run_model_source(folder: Path) -> str | None:
    """The model.source of the run whose adapter/ this is (None when it is not a run's adapter)."""
    config = folder.parent / "config.yaml"
    if folder.name != "adapter" or not config.is_file():
        return None
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        source = (data.get("model") or {}).get("source")
    except (OSError, yaml.YAMLError, AttributeError):
        return None  # an unreadable config: the shapes are still checked when the model loads
    return str(source) if source else None


def _same_model(first: str, second: str) -> bool:
    """One model however it was named ('demo' and 'embedded', a path with ~ or without)."""
    return _where(first) == _where(second)


def _where(source: str) -> str:
    from tunesmith.core.models.sources import ModelSourceError, resolve_model_source

    try:
        return str(Path(resolve_model_source(source).location).expanduser().resolve())
    except (ModelSourceError, OSError):
        return source.strip()  # gone or unreadable: compared as written


def _error(problem: str) -> ConfigError:
    return ConfigError("{" + _SETTING + "}: " + problem, (_SETTING,))
