"""Everything about a run that can be checked before the model loads: settings, model files, data, rewards.

Loading an 8B model takes minutes; a typo in a setting, a broken dataset row or a missing reward must
not cost them.  `check_run` reads the dataset (cheap next to the model), looks at the model's files
without loading them, and raises ConfigError / DatasetError / ModelSourceError with the setting or the
FILE:LINE to fix.  The dataset it read is handed on, so training does not read it twice.  It may
complete one setting: GRPO with no reward and prompts that carry an answer scores by exact match (and
says so in its notes).  It knows settings and files, not TRL or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.config import ConfigError, RunConfig
from tunesmith.core.data import (
    FORMAT_HOLDS,
    METHOD_FORMAT,
    DatasetError,
    DatasetFile,
    load_dataset_file,
    require_clean,
    sample_dataset_path,
)
from tunesmith.core.events import LogLine
from tunesmith.core.models.init_adapter import check_init_adapter
from tunesmith.core.training.model_files import check_model_files


@dataclass
class CheckedRun:
    """What the checks found: the dataset, ready to prepare, and notes for the run's log."""

    data_path: Path
    dataset: DatasetFile
    notes: list[LogLine] = field(default_factory=list)


def check_run(config: RunConfig) -> CheckedRun:
    """Raise the first problem that would stop this run, before anything heavy loads."""
    config.validate()
    check_choices(config)
    check_model_files(config.model.source)
    path = data_path(config)
    dataset = require_clean(
        load_dataset_file(path, config.data.format, config.data.columns), config.data.skip_invalid
    )
    check_data_fits_method(dataset, config.train.method, path)
    notes = [LogLine("warning", f"skipped {problem}") for problem in dataset.problems]
    notes += [LogLine("warning", note) for note in dataset.notes]  # e.g. a prose .txt read as one example
    notes += [LogLine("info", note) for note in check_init_adapter(config)]
    if config.train.method == "grpo":
        notes += check_rewards(config, dataset)
    return CheckedRun(path, dataset, notes)


def check_choices(config: RunConfig) -> None:
    """Combinations the model loader would refuse only after loading the model (each setting's own
    range and choices are `RunConfig.validate()`'s)."""
    if not config.lora.enabled and config.model.precision in ("4bit", "8bit", "auto"):
        from tunesmith.core.hardware import detect_hardware
        from tunesmith.core.models.precision import choose_precision

        chosen = choose_precision(config.model.precision, detect_hardware()).precision
        if chosen in ("4bit", "8bit"):
            raise ConfigError(
                f"Full fine-tuning ({{lora.enabled}}) cannot train {chosen} weights: turn LoRA on, or "
                "choose bf16 or fp32 ({model.precision}).",
                ("lora.enabled", "model.precision"),
            )


def data_path(config: RunConfig) -> Path:
    return sample_dataset_path() if config.data.path == "sample" else Path(config.data.path).expanduser()


def check_data_fits_method(dataset: DatasetFile, method: str, path: Path) -> None:
    wanted = METHOD_FORMAT.get(method)
    if wanted is None or dataset.format == wanted:
        return
    raise DatasetError(
        f"{path.name} holds {dataset.format} data, but {method.upper()} learns from "
        f"{FORMAT_HOLDS[wanted]}: pick another file, or another method ({{train.method}}).",
        settings=("train.method",),
    )


def check_rewards(config: RunConfig, dataset: DatasetFile) -> list[LogLine]:
    """GRPO's rewards: each named one exists, the reward file compiles, exact match has answers.

    With no reward chosen, prompts that carry an answer are scored by exact match against it; without
    answers there is nothing to score by, and the run is refused naming both ways to give a reward.
    """
    from tunesmith.core.training.rewards import builtin_reward

    train = config.train
    answered = sum(1 for record in dataset.records if record.example.get("answer"))
    notes = []
    if not train.rewards and not train.reward_file and not train.reward_model:
        if not answered:
            raise ConfigError(
                "GRPO needs a reward to score its completions: choose built-in ones with {train.rewards} "
                "(exact_match, format:REGEX, length:WORDS), your own with {train.reward_file}, a reward model "
                "with {train.reward_model}, or give each prompt an 'answer' column to score by exact match.",
                ("train.rewards", "train.reward_file", "train.reward_model"),
            )
        train.rewards = ["exact_match"]
        notes.append(
            LogLine(
                "info",
                "No reward chosen: each completion scores 1 when its final answer matches the prompt's "
                "'answer' column and 0 otherwise (the exact_match reward).",
            )
        )
    for spec in train.rewards:
        try:
            builtin_reward(spec)
        except ValueError as exc:
            raise ConfigError("{train.rewards}: " + _after_colon(str(exc)), ("train.rewards",)) from None
    if "exact_match" in train.rewards and not answered:
        raise ConfigError(
            "{train.rewards}: exact_match compares with each prompt's 'answer' column, and "
            f"{Path(dataset.path).name} has none; add one, or choose another reward.",
            ("train.rewards",),
        )
    if "exact_match" in train.rewards and answered < dataset.usable_rows:
        notes.append(
            LogLine(
                "warning",
                f"{dataset.usable_rows - answered} of {dataset.usable_rows} prompts have no answer: "
                "exact_match scores them 0.",
            )
        )
    if train.reward_file:
        _check_reward_file(Path(train.reward_file).expanduser())
    if train.reward_model:  # its files only; it loads with the trainer
        from tunesmith.core.training.reward_model import check_reward_model_folder

        check_reward_model_folder(train.reward_model)
    return notes


def _check_reward_file(path: Path) -> None:
    """Present and valid Python; it is only run when training starts (it may import heavy things)."""
    if not path.is_file():
        raise ConfigError("{train.reward_file}: " + f"{path}: no such file", ("train.reward_file",))
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except (SyntaxError, UnicodeDecodeError) as exc:
        if isinstance(exc, SyntaxError):
            line, reason = (f":{exc.lineno}" if exc.lineno else ""), exc.msg
        else:
            line, reason = "", "not UTF-8 text"
        raise ConfigError(
            "{train.reward_file}: " + f"{path}{line}: {reason}", ("train.reward_file",)
        ) from None


def _after_colon(message: str) -> str:
    """rewards.py's messages start with the setting's config path; the interface names it instead."""
    return message.split(": ", 1)[1] if message.startswith("train.rewards: ") else message
