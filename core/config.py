"""The typed configuration of one run, each setting declared once, and its round trip to YAML.

A `RunConfig` holds everything needed to repeat a run: the model and its precision, the dataset and
how it is formatted, the method, LoRA and the hyperparameters.  Each run folder keeps a `config.yaml`,
so `tunesmith train RUN_DIR/config.yaml` repeats it.  Every field carries its `Setting` (label, help,
range, choices, methods, CLI flag: `core.settings`), from which validation, the CLI's flags and the
app's form are derived.  This module only describes settings; checking them against the machine is
`core.models.precision`'s job, and running them is the engine's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunesmith.core.data.formats import FORMAT_LABELS, METHOD_FORMAT
from tunesmith.core.data.templates import NAMED_TEMPLATES
from tunesmith.core.settings import (
    ConfigError,
    Setting,
    SettingsNamedError,
    UnusualSetting,
    check_declared,
    declared,
    get_value,
    set_value,
    setting,
    unusual_values,
    worded,
)

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PRECISION_CHOICES = {
    "auto": "Automatic (best for this machine)",
    "4bit": "4-bit — least memory (QLoRA, NVIDIA GPU)",
    "8bit": "8-bit — less memory (NVIDIA GPU)",
    "bf16": "16-bit (bfloat16) — recent GPUs",
    "fp16": "16-bit (float16) — older GPUs",
    "fp32": "32-bit — full precision, most memory (CPU)",
}
METHOD_CHOICES = {
    "sft": "SFT — learn from examples",
    "dpo": "DPO — prefer good answers over bad",
    "orpo": "ORPO — preferences without a reference model",
    "grpo": "GRPO — learn from rewards",
    "ppo": "PPO — not offered (use GRPO with a reward model)",
}
# Offered in the method list so that people who look for PPO learn why it is missing and what to use;
# validate() refuses it before anything loads (BENCHMARKS.md, "PPO").
PPO_REFUSED = (
    "{train.method}: PPO is not offered. PPO trains against a reward model with a second, value model "
    "that predicts each answer's reward; TRL, the library Tunesmith trains with, removed its PPOTrainer "
    "in September 2026 (huggingface/trl PR #7020), so Tunesmith cannot offer PPO through it. Use GRPO "
    "with the same reward model instead (command line: --method grpo --reward-model PATH; in the app: "
    "GRPO, and the reward model's folder in 'Reward model (GRPO)'): the reward model scores each answer, "
    "and GRPO compares it with the other answers to the same prompt instead of training a value model."
)
OPTIMIZER_CHOICES = {"adamw": "AdamW", "adamw_8bit": "AdamW, 8-bit states (NVIDIA GPU only)"}
SCHEDULER_CHOICES = {
    "linear": "Linear decay",
    "cosine": "Cosine decay",
    "constant": "Constant",
    "constant_with_warmup": "Constant after warm-up",
}
TEMPLATE_CHOICES: dict[str | None, str] = {
    None: "The model's own",
    **{name: name for name in NAMED_TEMPLATES},
}
DATA_FORMAT_CHOICES = {"auto": "Detect from the rows", **FORMAT_LABELS}
TOO_LONG_CHOICES = {
    "cut": "Cut at the max length (the rest is not learned)",
    "split": "Split into pieces that fit (text in windows, chats between turns)",
    "drop": "Leave the row out",
}
PRECISIONS = tuple(PRECISION_CHOICES)
METHODS = tuple(METHOD_CHOICES)
_GRPO = ("grpo",)
_PREFERENCE = tuple(method for method, data in METHOD_FORMAT.items() if data == "preference")

__all__ = [
    "ConfigError",
    "DataConfig",
    "LoraSettings",
    "METHODS",
    "ModelConfig",
    "PRECISIONS",
    "RunConfig",
    "Setting",
    "SettingsNamedError",
    "TrainSettings",
    "UnusualSetting",
    "get_value",
    "run_settings",
    "set_value",
    "setting_at",
    "worded",
]


@dataclass
class ModelConfig:
    source: str = setting(
        "demo",
        label="Model",
        help="The model to fine-tune: 'demo' (the embedded SmolLM2-135M-Instruct, works offline), a "
        "Hugging Face model folder, a .gguf file or a hub id.",
        flag="--model",
    )
    precision: str = setting(
        "auto",
        label="Precision",
        help="How precisely the model's weights are held in memory while training. 4-bit (QLoRA) needs "
        "the least memory and is what most people use on one GPU. Automatic: 4-bit on a CUDA GPU that "
        "supports it, else bfloat16 where supported, else float32.",
        choices=PRECISION_CHOICES,
    )
    trust_remote_code: bool = setting(
        False,
        label="Run the model's own code",
        help="Run Python code shipped with a hub model. Off by default: only turn it on for models "
        "from people you trust.",
        advanced=True,
    )
    patch_kernels: bool = setting(
        True,
        label="Fast kernels",
        help="Train with Tunesmith's Triton kernels (NVIDIA GPUs): exact, faster and leaner. Off: stock "
        "transformers.",
        flag="--kernels",
        advanced=True,
    )


@dataclass
class LoraSettings:
    enabled: bool = setting(
        True,
        label="Use LoRA",
        help="LoRA trains a small add-on (fast, little memory). Without it (--full on the command line) "
        "every weight is trained: full fine-tuning, which needs far more memory.",
        flag="--full",
        flag_sets=False,
        advanced=True,
    )
    r: int = setting(
        16,
        label="LoRA rank",
        help="Size of the small add-on the model learns (LoRA). Higher can learn more, uses a bit more "
        "memory. 8-32 is usual.",
        minimum=1,
        maximum=512,
        usual=(2, 128),
        flag="--lora-r",
    )
    alpha: int = setting(
        16,
        label="LoRA alpha",
        help="Strength of the LoRA add-on. Usually equal to the rank, or twice it.",
        minimum=1,
        maximum=1024,
        usual=(1, 256),
        flag="--lora-alpha",
        advanced=True,
    )
    dropout: float = setting(
        0.0,
        label="LoRA dropout",
        help="Randomly ignores part of the add-on while training, against over-learning small "
        "datasets. 0 is fine most of the time.",
        minimum=0,
        maximum=0.9,
        usual=(0, 0.3),
        step=0.05,
        decimals=2,
        flag="--lora-dropout",
        advanced=True,
    )
    target_modules: list[str] = setting(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES),
        label="LoRA layers",
        help="Which of the model's layers get an add-on, by name. The default, every attention and MLP "
        "projection, learns best.",
        flag="--target-module",
        placeholder=", ".join(DEFAULT_TARGET_MODULES),
        advanced=True,
    )
    use_rslora: bool = setting(
        False,
        label="Rank-stabilised LoRA",
        help="Scale the add-on by alpha/sqrt(rank) instead of alpha/rank: steadier at large ranks.",
        flag="--rslora",
        advanced=True,
    )
    init_adapter: str | None = setting(
        None,
        label="Start from adapter",
        help="Continue from an earlier run's LoRA adapter instead of a fresh one: its run folder (or the "
        "adapter folder, safetensors). The run then takes that adapter's rank, alpha and layers, and "
        "must use the same base model. The Chat tab's 'Train on my feedback' sets it. Empty: a fresh "
        "adapter.",
        flag="--init-adapter",
        placeholder="a fresh adapter",
        advanced=True,
    )


@dataclass
class DataConfig:
    path: str = setting(
        "sample",
        label="Dataset file",
        help="A JSONL, JSON, CSV, Parquet or text file ('sample' for the bundled one). Read only, never "
        "written.",
        flag="--data",
    )
    format: str = setting(
        "auto",
        label="Data format",
        help="How the rows are laid out; detected from the rows unless you choose one.",
        choices=DATA_FORMAT_CHOICES,
    )
    columns: str = setting(
        "",
        label="Question and answer columns",
        help="For a table whose columns are not named as usual (question/answer, prompt/response, "
        "input/output, ...): which holds the question and which the answer, as "
        "question=COLUMN,answer=COLUMN. Empty: found by their names.",
        placeholder="found by their names",
    )
    template: str | None = setting(
        None,
        label="Chat template",
        help="The chat template to render conversations with when the model has none of its own "
        "(a base model). The model's own is used when it has one and nothing is chosen here.",
        choices=TEMPLATE_CHOICES,
        advanced=True,
    )
    max_length: int = setting(
        512,
        label="Max length (tokens)",
        help="Longest example the model sees; longer ones are cut, split or left out (Rows too long). "
        "The Dataset tab's histogram shows where your examples fall. Longer needs more memory.",
        minimum=16,
        maximum=1_048_576,
        step=64,
    )
    too_long: str = setting(
        "cut",
        label="Rows too long",
        help="What happens to an example longer than the max length: cut it there (its end is not "
        "learned), split it into pieces that each fit (plain text in consecutive windows; a conversation "
        "between turns, each piece from a question to an answer, with the system prompt kept), or leave "
        "it out. The dataset check says how many rows this concerns.",
        choices=TOO_LONG_CHOICES,
        methods=("sft",),
        advanced=True,
    )
    assistant_only_loss: bool = setting(
        True,
        label="Train on answers only",
        help="Learn only from the assistant's replies; the questions are context. Usually what you want.",
        advanced=True,
    )
    eval_ratio: float = setting(
        0.0,
        label="Evaluation split",
        help="Fraction of rows kept aside to measure how well the model does on examples it did not "
        "train on. 0 = none.",
        minimum=0,
        maximum=0.9,
        usual=(0, 0.3),
        step=0.05,
        decimals=2,
        advanced=True,
    )
    packing: bool = setting(
        False,
        label="Packing",
        help="Join short examples into full-length rows: faster when your examples are short.",
        advanced=True,
    )
    skip_invalid: bool = setting(
        False,
        label="Skip broken rows",
        help="Train on the good rows and leave broken ones out (each is listed) instead of refusing "
        "to start.",
        advanced=True,
    )


@dataclass
class TrainSettings:
    method: str = setting(
        "sft",
        label="Method",
        help="How the model learns. SFT copies the style of your example conversations; DPO and ORPO "
        "learn which of two answers is better (preference data); GRPO writes answers, scores them "
        "with your rewards and learns from the best (prompt-only data).",
        choices=METHOD_CHOICES,
    )
    epochs: float = setting(
        1.0,
        label="Epochs",
        help="How many times the model reads your whole dataset. More epochs learn your data more "
        "closely; too many make it parrot your examples. 1-3 is usual.",
        minimum=0,
        maximum=100,
        usual=(0, 10),
        step=0.5,
        decimals=1,
    )
    max_steps: int = setting(
        -1,
        label="Max steps",
        help="Stop after this many training steps, whatever the number of epochs. -1 = use epochs. "
        "Set a small number for a quick try.",
        minimum=-1,
        minimum_means="Use epochs",
    )
    batch_size: int = setting(
        2,
        label="Batch size",
        help="Examples processed together in one step. Bigger is faster per example but needs more "
        "memory. Lower it if you run out of memory.",
        minimum=1,
        maximum=512,
        usual=(1, 128),
    )
    grad_accum: int = setting(
        1,
        label="Gradient accumulation",
        help="Add up this many batches before each update: behaves like a bigger batch without the "
        "memory. Raise it when batch size is small.",
        minimum=1,
        maximum=1024,
        usual=(1, 64),
        advanced=True,
    )
    learning_rate: float = setting(
        2e-4,
        label="Learning rate",
        help="How big each learning step is. Too high: the loss jumps around or the model forgets how "
        "to talk. Too low: slow learning. 2e-4 suits LoRA; lower it (1e-4, 5e-5) if the loss is unstable.",
        minimum=1e-7,
        maximum=1.0,
        usual=(1e-6, 1e-3),
        step=1e-5,
        decimals=7,
        flag="--lr",
    )
    lr_scheduler: str = setting(
        "linear",
        label="LR schedule",
        help="How the learning rate changes during the run. Linear and cosine slowly lower it, which "
        "usually ends better.",
        choices=SCHEDULER_CHOICES,
        advanced=True,
    )
    warmup_ratio: float = setting(
        0.0,
        label="Warm-up fraction",
        help="Part of the run during which the learning rate rises from 0, which steadies the start. "
        "0-0.1 is usual.",
        minimum=0,
        maximum=0.5,
        usual=(0, 0.2),
        step=0.01,
        decimals=2,
        advanced=True,
    )
    warmup_steps: int = setting(
        0,
        label="Warm-up steps",
        help="The same warm-up counted in steps; when above 0 it replaces the warm-up fraction.",
        minimum=0,
        minimum_means="Use the fraction",
        maximum=1_000_000,
        advanced=True,
    )
    weight_decay: float = setting(
        0.0,
        label="Weight decay",
        help="Gently pulls weights toward zero against over-learning. 0 or 0.01 is usual.",
        minimum=0,
        maximum=1,
        usual=(0, 0.1),
        step=0.01,
        decimals=3,
        advanced=True,
    )
    max_grad_norm: float = setting(
        1.0,
        label="Gradient clipping",
        help="Largest gradient norm allowed in one step; bigger ones are scaled down, which keeps a "
        "bad batch from undoing the run. 1.0 is usual; 0 turns clipping off.",
        minimum=0,
        maximum=1000,
        usual=(0, 10),
        step=0.1,
        decimals=2,
        advanced=True,
    )
    seed: int = setting(
        42,
        label="Seed",
        help="Makes runs repeatable: the same seed and settings give the same result.",
        minimum=0,
        maximum=2**31 - 1,
        advanced=True,
    )
    optimizer: str = setting(
        "adamw",
        label="Optimizer",
        help="adamw: the standard. adamw_8bit: the same with less memory (NVIDIA GPU only).",
        choices=OPTIMIZER_CHOICES,
        advanced=True,
    )
    gpus: int = setting(
        1,
        label="GPUs",
        help="How many NVIDIA GPUs of this machine train together. The engine picks how: each GPU holds "
        "the whole model and trains on its share of each batch (DDP) when the model fits one card, or "
        "the model is split across the cards (FSDP2) when it does not; the log says which and why. "
        "Results equal one GPU's with the same total batch (batch size x GPUs).",
        minimum=1,
        maximum=64,
        usual=(1, 8),
    )
    gradient_checkpointing: bool | None = setting(
        None,
        label="Gradient checkpointing",
        help="Saves a lot of memory by recomputing parts of the model, about a third slower. Left "
        "automatic it is on for GPUs; turn it on if you run out of memory.",
        advanced=True,
    )
    eval_steps: int = setting(
        0,
        label="Evaluate every (steps)",
        help="How often to measure the loss on the rows kept aside (Evaluation split). 0 = never.",
        minimum=0,
        minimum_means="Never",
        advanced=True,
    )
    save_steps: int = setting(
        0,
        label="Checkpoint every (steps)",
        help="Also save a checkpoint every this many steps. 0 = by time only (Checkpoint every minutes).",
        minimum=0,
        minimum_means="Off (by time only)",
        advanced=True,
    )
    checkpoint_minutes: float = setting(
        5.0,
        label="Checkpoint every (minutes)",
        help="How often to save a checkpoint you can resume from, in minutes of training. A crash or "
        "power cut then costs at most this much. One is also saved when you stop; the last two are "
        "kept. 0 = only at the end or when you stop.",
        minimum=0,
        minimum_means="Off (at the end and on Stop)",
        maximum=1440,
        decimals=1,
        advanced=True,
    )
    logging_steps: int = setting(
        1,
        label="Log every (steps)",
        help="How often, in steps, the trainer reports the loss and learning rate.",
        minimum=1,
        internal="every step is reported to the app and the CLI, which thin out what they show",
    )
    beta: float = setting(
        0.1,
        label="Preference strength (DPO/ORPO)",
        help="DPO and ORPO only: how strongly to prefer the chosen answers over the rejected ones. "
        "Higher keeps the model closer to where it started. 0.1 is usual.",
        minimum=0,
        maximum=10,
        usual=(0.01, 1),
        step=0.05,
        decimals=2,
        methods=_PREFERENCE,
    )
    num_generations: int = setting(
        4,
        label="Answers per prompt (GRPO)",
        help="GRPO only: how many answers the model writes for each prompt; they are scored against "
        "each other. More gives steadier learning but is slower. 4-8 is usual.",
        minimum=2,
        maximum=256,
        usual=(2, 32),
        methods=_GRPO,
    )
    kl_weight: float = setting(
        0.0,
        label="Stay close to the base (GRPO)",
        help="GRPO only: how strongly the model is held near where it started (the KL penalty). 0 = "
        "not at all (less memory and faster); 0.01-0.1 keeps it from drifting too far.",
        minimum=0,
        maximum=10,
        usual=(0, 0.5),
        step=0.01,
        decimals=3,
        advanced=True,
        methods=_GRPO,
    )
    max_prompt_length: int = setting(
        256,
        label="Longest prompt (GRPO)",
        help="GRPO only: prompts longer than this many tokens are left out of training (the log says "
        "how many). Raise it if your prompts are long; longer prompts need more memory.",
        minimum=16,
        maximum=131072,
        step=64,
        advanced=True,
        methods=_GRPO,
    )
    max_completion_length: int = setting(
        64,
        label="Answer length (GRPO)",
        help="GRPO only: the longest answer (in tokens) the model writes while learning. Longer answers "
        "take longer to write: on a CPU keep it short.",
        minimum=8,
        maximum=131072,
        step=16,
        methods=_GRPO,
    )
    rewards: list[str] = setting(
        default_factory=list,
        label="Rewards (GRPO)",
        help="GRPO only: how answers are scored: exact_match (against the answer column), "
        "format:<regular expression>, length:<words>. GRPO needs at least one reward (here or in a "
        "reward file).",
        flag="--reward",
        placeholder="exact_match, length:50",
        methods=_GRPO,
    )
    reward_file: str | None = setting(
        None,
        label="Reward file (GRPO)",
        help="GRPO only: a Python file with your own reward functions (optional): def reward(prompts, "
        "completions, **columns) returning one number per completion.",
        placeholder="none",
        advanced=True,
        methods=_GRPO,
    )
    reward_model: str | None = setting(
        None,
        label="Reward model (GRPO)",
        help="GRPO only: a local folder holding a reward model, a sequence-classification model with one "
        "output (num_labels 1), its tokenizer and safetensors weights, that scores each answer; its score "
        "is one more reward beside the others. Loaded read-only, on the device the model trains on; it "
        "runs the folder's own code only when 'Run the model's own code' is on.",
        placeholder="none",
        advanced=True,
        methods=_GRPO,
    )
    fast_rollout: bool = setting(
        True,
        label="Fast answer writing (GRPO)",
        help="GRPO only, NVIDIA GPUs: write the answers with Tunesmith's KV-cached sampler (the same "
        "tokens as transformers' generate, several times faster). Off: transformers' generate.",
        advanced=True,
        methods=_GRPO,
    )


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    output_dir: str = setting(
        "runs",
        label="Runs folder",
        help="The folder in which each run gets a new folder of its own (never reused): config, "
        "metrics, log, checkpoints and the trained adapter.",
        flag="--output",
    )
    run_name: str | None = setting(
        None,
        label="Run name",
        help="A name for the run's folder, before the date and time that keep it unique. Empty: the "
        "date and time alone.",
        placeholder="automatic",
        advanced=True,
    )

    def unusual(self) -> list[UnusualSetting]:
        """Valid settings far from their usual range, worded (shown as warnings before a run starts)."""
        return unusual_values(self, run_settings())

    def validate(self) -> RunConfig:
        """Raise ConfigError naming the first bad field; return self for chaining."""
        check_declared(self, run_settings())
        if self.train.method == "ppo":
            raise ConfigError(PPO_REFUSED, ("train.method",))
        if self.train.epochs <= 0 and self.train.max_steps <= 0:
            raise ConfigError.about("train.epochs", "must be above 0 (or set max_steps)")
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
    return cls(**{name: _from_yaml_text(value, str(known[name].type)) for name, value in values.items()})


def _from_yaml_text(value: Any, annotation: str) -> Any:
    """YAML 1.1 reads `2e-4` (no dot) as text; a float setting takes it as the number it means."""
    if annotation.startswith("float") and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value  # validate() names the setting and what it must be
    return value


def run_settings() -> Iterator[Setting]:
    """Every setting of a run, in the order the config declares them."""
    return declared(RunConfig)


def setting_at(path: str) -> Setting:
    """The declaration of one setting, by its dotted path ("train.learning_rate")."""
    found = next((spec for spec in run_settings() if spec.path == path), None)
    if found is None:
        raise KeyError(f"no setting {path}")
    return found
