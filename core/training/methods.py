"""Per-method setup: which data a method needs and how its TRL trainer is configured.

SFT takes tokenized conversations with label masks (core.data.prepare); the preference and RL methods
take canonical rows.  Each `build_*` function maps the run's config onto TRL's config class.  This is
the only module that knows TRL's argument names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tunesmith.core.config import RunConfig
from tunesmith.core.data.validation import DatasetFile
from tunesmith.core.events import Event, LogLine

if TYPE_CHECKING:  # heavy libraries: imported by the functions that build trainers, when they run
    from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback
    from trl import GRPOConfig

    from tunesmith.core.data.prepare import PreparedData
    from tunesmith.core.models.loading import LoadedModel

OPTIMIZER_NAMES = {"adamw": "adamw_torch", "adamw_8bit": "adamw_8bit"}


def prepare_data(
    config: RunConfig,
    tokenizer: PreTrainedTokenizerBase,
    emit: Callable[[Event], None],
    dataset: DatasetFile | None = None,
) -> PreparedData | RowData:
    """Tokenized rows (SFT) or canonical rows (the others) from the run's dataset.

    `dataset` is the one the pre-load checks read (core.training.preflight); without it the file is
    read and checked here.
    """
    from tunesmith.core.data import apply_template, load_dataset_file, require_clean
    from tunesmith.core.data.prepare import prepare_sft
    from tunesmith.core.training.preflight import check_data_fits_method, data_path

    path = data_path(config)
    if dataset is None:
        dataset = require_clean(
            load_dataset_file(path, config.data.format, config.data.columns), config.data.skip_invalid
        )
        check_data_fits_method(dataset, config.train.method, path)
        for problem in dataset.problems:
            emit(LogLine("warning", f"skipped {problem}"))
    emit(LogLine("info", f"{path.name}: {dataset.summary()}"))
    apply_template(tokenizer, config.data.template)
    method = config.train.method
    if method != "sft":
        from tunesmith.core.data.prepare import preference_rows

        train, evaluation = preference_rows(dataset, config.data, config.train.seed)
        if method == "grpo":
            train, evaluation = _prompts_within_limit(train, evaluation, tokenizer, config, path, emit)
        return RowData(train, evaluation)
    prepared = prepare_sft(dataset, tokenizer, config.data, config.train.seed)
    emit(LogLine("info", prepared.stats.summary()))
    if prepared.truncated_rows:
        emit(
            LogLine(
                "warning",
                f"{prepared.truncated_rows} rows were cut to max_length {config.data.max_length}; "
                "raise max_length to keep them whole, or split them (Rows too long).",
            )
        )
    if prepared.split_rows or prepared.dropped_rows:
        emit(
            LogLine(
                "info",
                f"rows longer than max_length {config.data.max_length}: {prepared.split_rows} split into "
                f"pieces that fit, {prepared.dropped_rows} left out.",
            )
        )
    return prepared


def _prompts_within_limit(
    train, evaluation, tokenizer, config: RunConfig, path: Path, emit
) -> tuple[Any, Any]:
    """GRPO reads at most max_prompt_length prompt tokens (TRL no longer cuts them): longer rows are left out."""
    from tunesmith.core.data.prepare import within_prompt_limit

    limit = config.train.max_prompt_length
    train, dropped = within_prompt_limit(train, tokenizer, limit)
    evaluation, dropped_eval = within_prompt_limit(evaluation, tokenizer, limit)
    if len(train) == 0:
        raise ValueError(
            f"{path.name}: every prompt is longer than max_prompt_length ({limit} tokens); raise it to train on them."
        )
    if dropped or dropped_eval:
        emit(
            LogLine(
                "warning",
                f"{dropped + dropped_eval} prompts in {path.name} are longer than max_prompt_length ({limit} tokens) "
                "and were left out; raise max_prompt_length to keep them.",
            )
        )
    return train, evaluation


@dataclass
class RowData:
    """Canonical rows for TRL's preference and RL trainers (they tokenize themselves)."""

    train: Any
    eval: Any | None


def common_arguments(config: RunConfig, loaded: LoadedModel, output_dir: Path) -> dict[str, Any]:
    """Trainer arguments shared by every method (TrainingArguments names)."""
    from tunesmith.core.training.multi_gpu import trainer_arguments

    t = config.train
    on_gpu = loaded.device == "cuda"
    checkpointing = t.gradient_checkpointing if t.gradient_checkpointing is not None else on_gpu
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler,
        "warmup_steps": t.warmup_steps if t.warmup_steps else t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "seed": t.seed,
        "data_seed": t.seed,
        "optim": OPTIMIZER_NAMES[t.optimizer] if on_gpu else "adamw_torch",
        "gradient_checkpointing": checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if checkpointing else None,
        "eval_strategy": "steps" if t.eval_steps > 0 else "no",
        "eval_steps": t.eval_steps or None,
        "save_strategy": "steps" if t.save_steps > 0 else "no",
        "save_steps": t.save_steps or 500,
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        "report_to": [],
        "use_cpu": not on_gpu,
        # the compute dtype chosen once (core.models.precision.compute_dtype_for): fp16 with loss
        # scaling where the GPU has no bf16 (T4, V100, RTX 20xx), whatever the weights are stored in
        "bf16": on_gpu and loaded.compute.bf16_amp,
        "fp16": on_gpu and loaded.compute.fp16_amp,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        **trainer_arguments(),  # one rank of several: DDP's or FSDP2's (core.training.multi_gpu)
    }


@dataclass(frozen=True)
class BuiltTrainer:
    """TRL's trainer for the run, and what Tunesmith put into it, in words for the run's log."""

    trainer: Trainer  # TRL's SFTTrainer, DPOTrainer, ORPOTrainer or GRPOTrainer
    notes: tuple[str, ...] = ()


def build_trainer(
    config: RunConfig,
    loaded: LoadedModel,
    data: PreparedData | RowData,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> BuiltTrainer:
    builders = {"sft": _build_sft, "dpo": _build_dpo, "orpo": _build_orpo, "grpo": _build_grpo}
    trainer = builders[config.train.method](config, loaded, data, output_dir, callbacks)
    notes = []
    grpo = config.train.method == "grpo"
    if loaded.kernel_report is not None:  # our kernels are in the model: the LM head's log-probs too
        from tunesmith.core.training.log_probs import install_fused_log_probs

        temperature = cast("GRPOConfig", trainer.args).temperature if grpo else 1.0  # GRPO's own config
        if install_fused_log_probs(trainer, temperature=temperature):
            notes.append("Token log-probs from the LM head: Tunesmith's fused kernel")
    if grpo:  # which sampler writes the completions
        from tunesmith.core.training.rollout import install_fast_rollout

        notes.append(install_fast_rollout(trainer, loaded, enabled=config.train.fast_rollout))
        if config.train.reward_model:
            from tunesmith.core.training.reward_model import reward_model_notes

            notes += reward_model_notes(trainer)
    return BuiltTrainer(_finish_trainer(trainer, callbacks), tuple(notes))


def _finish_trainer(trainer: Trainer, callbacks: list[TrainerCallback]) -> Trainer:
    from transformers.trainer_callback import PrinterCallback

    from tunesmith.core.training.callbacks import TokenCounter

    trainer.remove_callback(PrinterCallback)  # our events replace its raw dict prints
    _count_parameters_once(trainer)
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    for callback in callbacks:
        if hasattr(callback, "counter"):
            callback.counter = counter
    return trainer


def _count_parameters_once(trainer: Trainer) -> None:
    """transformers' Trainer adds 6 x tokens x parameters to its total_flos every step, counting the
    parameters by walking every module and weight of the model each time: 14 ms of host time per step for
    the demo model (LoRA r16) on a 2-core CPU, with the GPU waiting.  The count cannot change once the trainer is
    built (TRL adds its reference adapter before), so it is taken at the first step and kept."""
    stock = trainer.floating_point_ops
    count: list[int] = []

    def floating_point_ops(inputs: dict[str, Any]) -> int:
        model: Any = trainer.model  # a PreTrainedModel or a PeftModel around one
        main_input = getattr(model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(model, "num_parameters"):
            return stock(inputs)
        if not count:
            count.append(model.num_parameters(exclude_embeddings=True))
        return 6 * inputs[main_input].numel() * count[0]

    trainer.floating_point_ops = floating_point_ops  # type: ignore[method-assign]


def _build_dpo(
    config: RunConfig,
    loaded: LoadedModel,
    data: PreparedData | RowData,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    from trl import DPOConfig, DPOTrainer

    # ref_model=None with a LoRA model: TRL copies the adapter as the run starts into a frozen "ref"
    # adapter on the same base, so no second copy of the weights is held in memory.  The reference is
    # the model the run starts from: the base for a fresh adapter (its B is zero), the base + the earlier
    # adapter when lora.init_adapter continues one (DPO's anchor is the policy it starts from).
    return _build_preference(
        DPOConfig, DPOTrainer, config, loaded, data, output_dir, callbacks, ref_model=None
    )


def _build_orpo(
    config: RunConfig,
    loaded: LoadedModel,
    data: PreparedData | RowData,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    try:
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    except ImportError:  # older TRL kept ORPO at the top level
        from trl import ORPOConfig, ORPOTrainer  # type: ignore[attr-defined, no-redef]  # not in this TRL

    return _build_preference(ORPOConfig, ORPOTrainer, config, loaded, data, output_dir, callbacks)


def _build_preference(
    config_class: type,
    trainer_class: type,
    config: RunConfig,
    loaded: LoadedModel,
    data: PreparedData | RowData,
    output_dir: Path,
    callbacks: list[TrainerCallback],
    **trainer_kwargs: Any,
) -> Trainer:
    """DPO and ORPO take the same arguments: beta, max length, and prompt/chosen/rejected rows."""
    args = config_class(
        **common_arguments(config, loaded, output_dir),
        beta=config.train.beta,
        max_length=config.data.max_length,
    )
    return _make_trainer(trainer_class, args, loaded, data, callbacks, **trainer_kwargs)


def _make_trainer(
    trainer_class: type,
    args: Any,
    loaded: LoadedModel,
    data: PreparedData | RowData,
    callbacks: list[TrainerCallback],
    **extra: Any,
) -> Trainer:
    """Every method's trainer takes the same model, rows, tokenizer and callbacks."""
    if data.eval is None and args.eval_strategy != "no":
        args.eval_strategy = "no"  # asked for evaluation, but no rows were held out
    return trainer_class(
        model=loaded.model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=loaded.tokenizer,
        callbacks=callbacks,
        **extra,
    )


def _build_grpo(
    config: RunConfig,
    loaded: LoadedModel,
    data: PreparedData | RowData,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    from trl import GRPOConfig, GRPOTrainer

    from tunesmith.core.training.rewards import build_rewards

    t = config.train
    common = common_arguments(config, loaded, output_dir)
    # Each step scores whole groups: the batch holds num_generations completions per prompt.
    common["per_device_train_batch_size"] = max(t.batch_size, t.num_generations)
    common["per_device_train_batch_size"] -= common["per_device_train_batch_size"] % t.num_generations
    common["per_device_eval_batch_size"] = common["per_device_train_batch_size"]
    args = GRPOConfig(
        **common,
        beta=t.kl_weight,
        num_generations=t.num_generations,
        max_completion_length=t.max_completion_length,
        temperature=1.0,
    )
    rewards: list[Any] = build_rewards(t.rewards, t.reward_file) if t.rewards or t.reward_file else []
    tokenizers: list[Any] = [None] * len(rewards)  # TRL's reward_processing_classes: only models need one
    if t.reward_model:  # scored by TRL: the model's one output at the last token (core.training.reward_model)
        from tunesmith.core.training.reward_model import load_reward_model

        dtype = loaded.compute.torch_dtype if loaded.device == "cuda" else None
        reward_model = load_reward_model(t.reward_model, config.model.trust_remote_code, dtype)
        rewards.append(reward_model.model)
        tokenizers.append(reward_model.tokenizer)
    if not rewards:
        rewards = build_rewards([], None)  # raises, naming the settings that give a reward
    return _make_trainer(
        GRPOTrainer,
        args,
        loaded,
        data,
        callbacks,
        reward_funcs=rewards,
        reward_processing_classes=tokenizers,
    )


def _build_sft(
    config: RunConfig,
    loaded: LoadedModel,
    data: PreparedData | RowData,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **common_arguments(config, loaded, output_dir),
        max_length=config.data.max_length,
        packing=config.data.packing,
        assistant_only_loss=False,  # our own label mask already covers it (core.data.templates)
        dataset_num_proc=None,
    )
    return _make_trainer(SFTTrainer, args, loaded, data, callbacks)
