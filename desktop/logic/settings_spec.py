"""Which training settings the app shows, with plain-words tooltips, and the three presets.

Pure data and small functions over `RunConfig` (no Qt): the Train tab builds its form from `SETTINGS`.
A setting is addressed by its dotted path in the config ("train.learning_rate").  Presets and what
this machine can do live in `presets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SettingSpec:
    """One knob: where it lives in the config, how to edit it, and what to tell the user."""

    path: str
    label: str
    kind: str  # "int" | "float" | "choice" | "bool" | "list" (comma-separated) | "path" (empty = None)
    tooltip: str
    advanced: bool = False
    minimum: float = 0
    maximum: float = 1_000_000
    decimals: int = 0
    step: float = 1
    choices: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()  # the training methods that use it (empty: every method)


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "train.epochs",
        "Epochs",
        "float",
        "How many times the model reads your whole dataset.\n"
        "More epochs learn your data more closely; too many make it parrot your examples.\n"
        "1-3 is usual.",
        minimum=0.1,
        maximum=100,
        decimals=1,
        step=0.5,
    ),
    SettingSpec(
        "train.max_steps",
        "Max steps",
        "int",
        "Stop after this many training steps, whatever the\n"
        "number of epochs. -1 = use epochs. Set a small number for a quick try.",
        minimum=-1,
    ),
    SettingSpec(
        "train.learning_rate",
        "Learning rate",
        "float",
        "How big each learning step is.\n"
        "Too high: the loss jumps around or the model forgets how to talk. Too low: slow learning.\n"
        "2e-4 suits LoRA; lower it (1e-4, 5e-5) if the loss is unstable.",
        minimum=1e-7,
        maximum=0.1,
        decimals=7,
        step=1e-5,
    ),
    SettingSpec(
        "train.batch_size",
        "Batch size",
        "int",
        "Examples processed together in one step.\n"
        "Bigger is faster per example but needs more memory. Lower it if you run out of memory.",
        minimum=1,
        maximum=512,
    ),
    SettingSpec(
        "data.max_length",
        "Max length (tokens)",
        "int",
        "Longest example the model sees; longer\n"
        "ones are cut. The Dataset tab's histogram shows where your examples fall.\n"
        "Longer needs more memory.",
        minimum=16,
        maximum=131072,
        step=64,
    ),
    SettingSpec(
        "lora.r",
        "LoRA rank",
        "int",
        "Size of the small add-on the model learns (LoRA).\n"
        "Higher can learn more, uses a bit more memory. 8-32 is usual.",
        minimum=1,
        maximum=512,
    ),
    SettingSpec(
        "lora.alpha",
        "LoRA alpha",
        "int",
        "Strength of the LoRA add-on. Usually equal to the\nrank, or twice it.",
        advanced=True,
        minimum=1,
        maximum=1024,
    ),
    SettingSpec(
        "lora.dropout",
        "LoRA dropout",
        "float",
        "Randomly ignores part of the add-on while\n"
        "training, against over-learning small datasets. 0 is fine most of the time.",
        advanced=True,
        maximum=0.9,
        decimals=2,
        step=0.05,
    ),
    SettingSpec(
        "lora.enabled",
        "Use LoRA",
        "bool",
        "On: train a small add-on (fast, little memory).\n"
        "Off: full fine-tuning of every weight (needs far more memory).",
        advanced=True,
    ),
    SettingSpec(
        "train.grad_accum",
        "Gradient accumulation",
        "int",
        "Add up this many batches before each\n"
        "update: behaves like a bigger batch without the memory. Raise it when batch size is small.",
        advanced=True,
        minimum=1,
        maximum=1024,
    ),
    SettingSpec(
        "train.lr_scheduler",
        "LR schedule",
        "choice",
        "How the learning rate changes during the run.\n"
        "Linear and cosine slowly lower it, which usually ends better.",
        advanced=True,
        choices=("linear", "cosine", "constant", "constant_with_warmup"),
    ),
    SettingSpec(
        "train.warmup_ratio",
        "Warm-up fraction",
        "float",
        "Part of the run during which the\nlearning rate rises from 0, which steadies the start. 0-0.1.",
        advanced=True,
        maximum=0.5,
        decimals=2,
        step=0.01,
    ),
    SettingSpec(
        "train.weight_decay",
        "Weight decay",
        "float",
        "Gently pulls weights toward zero against\nover-learning. 0 or 0.01 is usual.",
        advanced=True,
        maximum=1,
        decimals=3,
        step=0.01,
    ),
    SettingSpec(
        "train.optimizer",
        "Optimizer",
        "choice",
        "adamw: the standard. adamw_8bit: the same\nwith less memory (NVIDIA GPU only).",
        advanced=True,
        choices=("adamw", "adamw_8bit"),
    ),
    SettingSpec(
        "train.gradient_checkpointing",
        "Gradient checkpointing",
        "bool",
        "Saves a lot of memory by\n"
        "recomputing parts of the model, about 30% slower. Turn on if you run out of memory.",
        advanced=True,
    ),
    SettingSpec(
        "data.assistant_only_loss",
        "Train on answers only",
        "bool",
        "Learn only from the assistant's\nreplies; the questions are context. Usually what you want.",
        advanced=True,
    ),
    SettingSpec(
        "data.packing",
        "Packing",
        "bool",
        "Joins short examples into full-length rows: faster when\nyour examples are short.",
        advanced=True,
    ),
    SettingSpec(
        "data.eval_ratio",
        "Evaluation split",
        "float",
        "Fraction of rows kept aside to measure\n"
        "how well the model does on examples it did not train on. 0 = none.",
        advanced=True,
        maximum=0.5,
        decimals=2,
        step=0.05,
    ),
    SettingSpec(
        "train.eval_steps",
        "Evaluate every (steps)",
        "int",
        "How often to measure the loss on the rows kept aside\n(Evaluation split). 0 = never.",
        advanced=True,
    ),
    SettingSpec(
        "train.checkpoint_minutes",
        "Checkpoint every (minutes)",
        "float",
        "How often to save a checkpoint you can resume from, in minutes of training.\n"
        "A crash or power cut then costs at most this much. One is also saved when you press Stop;\n"
        "the last two are kept. 0 = only at the end or when you press Stop.",
        advanced=True,
        maximum=1440,
    ),
    SettingSpec(
        "train.save_steps",
        "Checkpoint every (steps)",
        "int",
        "Also save a checkpoint every this many steps.\n0 = by time only (the setting above).",
        advanced=True,
    ),
    SettingSpec(
        "train.seed",
        "Seed",
        "int",
        "Makes runs repeatable: the same seed and settings give the\nsame result.",
        advanced=True,
        maximum=2**31 - 1,
    ),
    SettingSpec(
        "train.beta",
        "Preference strength (DPO/ORPO)",
        "float",
        "DPO and ORPO only: how strongly to prefer the chosen answers over the rejected ones.\n"
        "Higher keeps the model closer to where it started. 0.1 is usual.",
        maximum=10,
        decimals=2,
        step=0.05,
        methods=("dpo", "orpo"),
    ),
    SettingSpec(
        "train.num_generations",
        "Answers per prompt (GRPO)",
        "int",
        "GRPO only: how many answers the model writes for each prompt; they are scored against each\n"
        "other. More gives steadier learning but is slower. 4-8 is usual.",
        minimum=2,
        maximum=64,
        methods=("grpo",),
    ),
    SettingSpec(
        "train.max_completion_length",
        "Answer length (GRPO)",
        "int",
        "GRPO only: the longest answer (in tokens) the model writes while learning.\n"
        "Longer answers take longer to write: on a CPU keep it short.",
        minimum=8,
        maximum=8192,
        step=16,
        methods=("grpo",),
    ),
    SettingSpec(
        "train.max_prompt_length",
        "Longest prompt (GRPO)",
        "int",
        "GRPO only: prompts longer than this many tokens are left out of training (the log says how\n"
        "many). Raise it if your prompts are long; longer prompts need more memory.",
        advanced=True,
        minimum=16,
        maximum=32768,
        step=64,
        methods=("grpo",),
    ),
    SettingSpec(
        "train.fast_rollout",
        "Fast answer writing (GRPO)",
        "bool",
        "GRPO only, NVIDIA GPUs: write the answers with Tunesmith's fast sampler (several times\n"
        "faster, same model). Turn off to use the standard, slower transformers sampler.",
        advanced=True,
        methods=("grpo",),
    ),
    SettingSpec(
        "train.kl_weight",
        "Stay close to the base (GRPO)",
        "float",
        "GRPO only: how strongly the model is held near where it started (the KL penalty).\n"
        "0 = not at all (less memory and faster); 0.01-0.1 keeps it from drifting too far.",
        advanced=True,
        maximum=10,
        decimals=3,
        step=0.01,
        methods=("grpo",),
    ),
    SettingSpec(
        "train.rewards",
        "Rewards (GRPO)",
        "list",
        "GRPO only: how answers are scored, separated by commas: exact_match (the answer column),\n"
        "format:<regular expression>, length:<words>. GRPO needs at least one reward\n"
        "(here or in a reward file).",
        methods=("grpo",),
    ),
    SettingSpec(
        "train.reward_file",
        "Reward file (GRPO)",
        "path",
        "GRPO only: a Python file with your own reward functions (optional):\n"
        "def reward(prompts, completions, **columns) returning one number per completion.",
        advanced=True,
        methods=("grpo",),
    ),
)


def get_value(config: Any, path: str) -> Any:
    """Read a dotted setting from a RunConfig."""
    section, name = path.split(".")
    return getattr(getattr(config, section), name)


def set_value(config: Any, path: str, value: Any) -> None:
    """Write a dotted setting into a RunConfig."""
    section, name = path.split(".")
    setattr(getattr(config, section), name, value)
