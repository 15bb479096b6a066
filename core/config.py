"""The typed configuration of one run, and its round trip to YAML.

A `RunConfig` holds everything needed to repeat a run: the model and its precision, the dataset and
how it is formatted, the method, LoRA and the hyperparameters.  Each run folder keeps a `config.yaml`,
so `tunesmith train RUN_DIR/config.yaml` repeats it.  This module only describes settings; checking
them against the machine is `core.models.precision`'s job, and running them is the engine's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PRECISIONS = ("auto", "4bit", "8bit", "bf16", "fp16", "fp32")
METHODS = ("sft", "dpo", "orpo", "grpo")
OPTIMIZERS = ("adamw", "adamw_8bit")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


class SettingsNamedError(ValueError):
    """An error whose message names settings, worded by whichever interface shows it.

    The message is a template in which `{train.rewards}` stands for a setting; `str()` gives the config
    paths (what a config.yaml user reads), `worded(name)` lets the CLI say `--reward` and the app its
    field label, so a person reads the name of the thing they actually typed or clicked.
    """

    def __init__(self, template: str, settings: tuple[str, ...] = ()):
        self.template = template
        self.settings = tuple(settings)
        super().__init__(self.worded(lambda setting: setting))

    def worded(self, name: Callable[[str], str]) -> str:
        text = self.template
        for setting in self.settings:
            text = text.replace("{" + setting + "}", name(setting))
        return text


class ConfigError(SettingsNamedError):
    """A setting is missing, unknown or out of range; the message names the field."""

    @classmethod
    def about(cls, setting: str, problem: str) -> ConfigError:
        """`{setting} <problem>`, e.g. about("train.batch_size", "must be 1 or more")."""
        return cls("{" + setting + "} " + problem, (setting,))


def worded(exc: BaseException, name: Callable[[str], str]) -> str:
    """The message of any exception, its settings named by `name` where it names any."""
    return exc.worded(name) if isinstance(exc, SettingsNamedError) else str(exc)


@dataclass
class ModelConfig:
    # "demo" (the embedded SmolLM2-135M-Instruct), a local Hugging Face folder, a .gguf file or a hub id.
    source: str = "demo"
    # auto = 4bit on a CUDA GPU that supports it, else bf16 where supported, else fp32.
    precision: str = "auto"
    # Run Python code shipped with a hub model.  Off: only turn it on for models you trust.
    trust_remote_code: bool = False
    # Use Tunesmith's Triton kernels (CUDA only; exact, faster, leaner).  Off = stock transformers.
    patch_kernels: bool = True


@dataclass
class LoraSettings:
    # False = full fine-tuning (every weight trained; needs far more memory).
    enabled: bool = True
    r: int = 16
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    # rsLoRA scales by alpha/sqrt(r) instead of alpha/r: steadier at large ranks.
    use_rslora: bool = False


@dataclass
class DataConfig:
    # A JSONL, JSON, CSV, Parquet or text file, or a hub dataset id.  Read only, never written.
    path: str = "sample"
    # auto, alpaca, sharegpt, messages, text, preference, prompt.
    format: str = "auto"
    # Chat template name when the model has none ("chatml", "llama3", "alpaca"); None = the model's own.
    template: str | None = None
    max_length: int = 512
    # Train only on the assistant's tokens (the prompt is context, not a target).
    assistant_only_loss: bool = True
    # Fraction of rows held out for evaluation (0 = no eval split).
    eval_ratio: float = 0.0
    # Concatenate short examples into full-length rows (faster on many short rows).
    packing: bool = False
    # Skip broken records instead of refusing to start.
    skip_invalid: bool = False


@dataclass
class TrainSettings:
    method: str = "sft"
    epochs: float = 1.0
    # > 0 overrides epochs.
    max_steps: int = -1
    batch_size: int = 2
    grad_accum: int = 1
    learning_rate: float = 2e-4
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 42
    optimizer: str = "adamw"
    # Recompute activations in the backward pass: less memory, ~30% slower.  None = on for GPUs.
    gradient_checkpointing: bool | None = None
    # 0 = never.
    eval_steps: int = 0
    # A checkpoint every N steps as well (0 = only the timed ones and the one on Stop).
    save_steps: int = 0
    # A checkpoint every this many minutes of training, so a crash loses at most that much (0 = off).
    # Cheap with LoRA: adapter, optimizer, scheduler, RNG and data position; the last two are kept.
    checkpoint_minutes: float = 5.0
    logging_steps: int = 1
    # Preference methods (DPO / ORPO): strength of the preference (higher = stay closer to the base).
    beta: float = 0.1
    # GRPO: completions per prompt, KL weight (0 = no reference model needed), lengths and rewards.
    num_generations: int = 4
    kl_weight: float = 0.0
    max_prompt_length: int = 256
    max_completion_length: int = 64
    # Built-in rewards: "exact_match", "format:<regex>", "length:<words>" (core.training.rewards).
    rewards: list[str] = field(default_factory=list)
    # A Python file with your own reward function(s): def reward(prompts, completions, **columns).
    reward_file: str | None = None
    # GRPO: make the completions with Tunesmith's KV-cached sampler (the tokens transformers' generate
    # would make, without its per-token overhead) when our kernels run on a GPU.  Off = TRL's generate.
    fast_rollout: bool = True


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    # Runs are created as new folders inside this one, never reused.
    output_dir: str = "runs"
    # Optional name for the run folder (a timestamp is added so it stays unique).
    run_name: str | None = None

    def validate(self) -> RunConfig:
        """Raise ConfigError naming the first bad field; return self for chaining."""
        _check_types(self)
        checks = [
            ("model.precision", self.model.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
            ("train.method", self.train.method in METHODS, f"one of {', '.join(METHODS)}"),
            ("train.optimizer", self.train.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
            ("train.lr_scheduler", self.train.lr_scheduler in SCHEDULERS, f"one of {', '.join(SCHEDULERS)}"),
            ("train.batch_size", self.train.batch_size >= 1, "1 or more"),
            ("train.grad_accum", self.train.grad_accum >= 1, "1 or more"),
            ("train.learning_rate", 0 < self.train.learning_rate < 1, "between 0 and 1, e.g. 2e-4"),
            ("train.epochs", self.train.epochs > 0 or self.train.max_steps > 0, "above 0 (or set max_steps)"),
            ("data.max_length", self.data.max_length >= 16, "16 or more"),
            ("data.eval_ratio", 0 <= self.data.eval_ratio < 1, "at least 0 and below 1"),
            ("lora.r", self.lora.r >= 1, "1 or more"),
            ("lora.dropout", 0 <= self.lora.dropout < 1, "at least 0 and below 1"),
            ("train.num_generations", self.train.num_generations >= 2, "2 or more"),
            ("train.save_steps", self.train.save_steps >= 0, "0 (off) or more"),
            ("train.checkpoint_minutes", self.train.checkpoint_minutes >= 0, "0 (off) or more"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError.about(name, f"must be {expected}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> RunConfig:
        """Build from nested dicts; unknown keys are errors (a typo must not be silently ignored)."""
        sections = {"model": ModelConfig, "data": DataConfig, "lora": LoraSettings, "train": TrainSettings}
        known_top = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known_top
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _build_section(sections[key], value or {}, f"{where}: {key}")
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_yaml(self, path: str | Path) -> None:
        """Write atomically, so a crash never leaves half a config behind."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected sections model/data/lora/train at the top level")
        return cls.from_dict(data, where=str(path))


def _build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of settings")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    return cls(**{name: _from_yaml_text(value, known[name].type) for name, value in values.items()})


def _from_yaml_text(value: Any, annotation: str) -> Any:
    """YAML 1.1 reads `2e-4` (no dot) as text; a float setting takes it as the number it means."""
    if annotation.startswith("float") and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value  # validate() names the setting and what it must be
    return value


# A setting's annotation (a string: `from __future__ import annotations`) -> accepted types, in words.
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "text"),
    "list[str]": ((list,), "a list of names"),
}


def _check_types(config: RunConfig) -> None:
    """Each setting holds the kind of value it is declared with (a YAML file or the app may not)."""
    sections = [(section, getattr(config, section)) for section in ("model", "data", "lora", "train")]
    for prefix, holder in [(None, config), *sections]:
        for declared in dataclasses.fields(holder):
            annotation = str(declared.type)
            optional = annotation.endswith(" | None")
            accepted = _TYPES.get(annotation.removesuffix(" | None"))
            value = getattr(holder, declared.name)
            if accepted is None or (optional and value is None):
                continue
            types, words = accepted
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                setting = f"{prefix}.{declared.name}" if prefix else declared.name
                raise ConfigError.about(setting, f"must be {words}, not {value!r}")
