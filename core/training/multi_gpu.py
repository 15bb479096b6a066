"""Several GPUs for one run: DDP or FSDP2, chosen from the memory arithmetic, and what changes per rank.

`plan_parallel` decides, before anything loads, how `train.gpus` cards share a run: each card holds
the whole model and trains on its share of every batch (DDP) when the model fits one card, or the
weights, gradients and optimizer state are sharded across the cards (FSDP2) when it does not.  The
plan carries its reason in words for the run's log.  `trainer_arguments` turns the plan into the
TrainingArguments that make accelerate (inside the Trainer) wrap the model; `kernel_notices` says which
of Tunesmith's kernel features a rank turns off and why; `resume_notice` what resuming on another
number of GPUs changes.

Knows the VRAM estimate (core.vram) and accelerate's names for the strategies; it starts nothing
(core.training.launcher does) and never touches torch.distributed itself.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tunesmith.core.config import ConfigError, RunConfig
from tunesmith.core.hardware import HardwareInfo

STRATEGIES = ("ddp", "fsdp2")
# Set by the launcher in each rank's environment: the strategy the parent chose.
STRATEGY_ENV = "TUNESMITH_PARALLEL"
# "1" lets train.gpus > 1 start CPU processes talking over gloo: a check that the multi-GPU path gives
# one GPU's results (tests, machines without GPUs), not a speed-up.  Never needed on a GPU machine.
CPU_RANKS_ENV = "TUNESMITH_CPU_RANKS"
QUANTIZED = ("4bit", "8bit")  # bitsandbytes' storage: not sharded by FSDP2 (sharded_need_gb)
FITS_SHARE = 0.95  # of a card's free memory, as core.vram's "fits" uses


@dataclass(frozen=True)
class ParallelPlan:
    strategy: str  # "ddp" | "fsdp2"
    processes: int
    backend: str  # "nccl" on CUDA GPUs, "gloo" for CPU processes
    reason: str  # for the run's log

    def to_dict(self) -> dict:
        return asdict(self)


def plan_parallel(config: RunConfig, hardware: HardwareInfo, model_dir: str | None = None) -> ParallelPlan:
    """DDP when one card holds the run, FSDP2 when only the cards together do; ConfigError otherwise."""
    count = config.train.gpus
    forced = os.environ.get(STRATEGY_ENV) or None
    if forced is not None and forced not in STRATEGIES:
        raise ConfigError(f"{STRATEGY_ENV}={forced}: must be one of {', '.join(STRATEGIES)}")
    if not hardware.has_gpu:
        if os.environ.get(CPU_RANKS_ENV) != "1":
            raise ConfigError.about(
                "train.gpus",
                f"is {count} but this machine has no CUDA GPU: train with 1 (the CPU), or on a machine "
                "with several NVIDIA GPUs.",
            )
        strategy = forced or "ddp"
        return ParallelPlan(
            strategy,
            count,
            "gloo",
            f"{count} CPU processes over gloo ({strategy.upper()}): the multi-GPU path checked on the "
            "CPU, no faster than one process.",
        )
    if hardware.gpu_count < count:
        raise ConfigError.about(
            "train.gpus", f"is {count} but this machine has {hardware.gpu_count} CUDA GPU(s): lower it."
        )
    return _plan_for_cards(config, hardware, count, forced, model_dir)


def _plan_for_cards(
    config: RunConfig, hardware: HardwareInfo, count: int, forced: str | None, model_dir: str | None
) -> ParallelPlan:
    import json

    from tunesmith.core.models.precision import choose_precision
    from tunesmith.core.models.sources import resolve_dense_model_dir
    from tunesmith.core.vram import estimate_for_shape, model_shape

    folder = Path(model_dir) if model_dir else resolve_dense_model_dir(config.model.source)
    shape = model_shape(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    precision = choose_precision(config.model.precision, hardware).precision
    estimate = estimate_for_shape(shape, precision, config, hardware)
    card = hardware.vram_free_gb * FITS_SHARE
    whole = estimate.total_gb
    sharded = sharded_need_gb(estimate.parts, count, shape.layers, shards_weights=precision not in QUANTIZED)
    if forced == "ddp" or (forced is None and whole <= card):
        return ParallelPlan(
            "ddp",
            count,
            "nccl",
            f"DDP on {count} GPUs: the run needs about {whole:.1f} GiB and one card has {card:.1f} GiB "
            "free, so each GPU holds the whole model and trains on its share of every batch.",
        )
    if forced is None and sharded > card:
        raise ConfigError.about(
            "train.gpus",
            f"is {count}, but even sharded across {count} cards the run needs about {sharded:.1f} GiB per "
            f"card ({card:.1f} GiB free): use more GPUs, 16-bit precision (FSDP2 shards 16-bit weights, not "
            "4-bit ones), a smaller model, or a smaller batch or max length.",
        )
    return ParallelPlan(
        "fsdp2",
        count,
        "nccl",
        f"FSDP2 on {count} GPUs: the run needs about {whole:.1f} GiB, more than one card's {card:.1f} GiB "
        f"free; sharding weights, gradients and optimizer state brings it to about {sharded:.1f} GiB per card.",
    )


def sharded_need_gb(parts: dict[str, float], count: int, layers: int, shards_weights: bool = True) -> float:
    """Per-card memory under FSDP2: weights and training state divided among the cards, plus two
    layers' weights gathered whole at a time (the one computing and the one prefetched); activations,
    logits and the CUDA overhead are each card's own.  `shards_weights` False: bitsandbytes' 4-bit and
    8-bit weights, which accelerate 1.15 leaves out of FSDP2's sharding (uint8 storage cannot become a
    DTensor: accelerate's fsdp_utils, "non-floating frozen Params4bit"), so every card holds them whole."""
    weights = parts.get("weights", 0.0)
    state = parts.get("adapter + optimizer", 0.0)
    own = sum(v for k, v in parts.items() if k not in ("weights", "adapter + optimizer"))
    if not shards_weights:
        return weights + state / count + own
    gathered = 2 * weights / max(layers, 1)
    return weights / count + state / count + gathered + own


def rank_strategy() -> str | None:
    """The strategy of this process when it is one rank of several, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return os.environ.get(STRATEGY_ENV, "ddp")


def trainer_arguments() -> dict:
    """TrainingArguments for this rank (nothing in a single process): accelerate wraps the model."""
    strategy = rank_strategy()
    if strategy is None:
        return {}
    if strategy == "fsdp2":
        return {
            "fsdp": "full_shard auto_wrap",
            "fsdp_config": {
                "version": 2,
                "reshard_after_forward": True,
                # not FULL_STATE_DICT: the Trainer would then gather the whole model, frozen weights
                # too, at every checkpoint; checkpoints hold the LoRA part whole instead
                # (core.training.fsdp_checkpoints), and with this type the Trainer's own save_model
                # leaves the model to them
                "state_dict_type": "SHARDED_STATE_DICT",
                "cpu_ram_efficient_loading": False,
            },
        }
    # LoRA's frozen base weights take no gradient: nothing for DDP to search for each step
    return {"ddp_find_unused_parameters": False}


def resume_notice(checkpoint: Path, config: RunConfig) -> str | None:
    """What resuming `checkpoint` on `train.gpus` processes changes, in words for the log, when another
    number of processes saved it (None when the same number did, or the checkpoint does not say).

    The LoRA weights and optimizer state are whole in every checkpoint (DDP's are rank 0's, FSDP2's
    are gathered: core.training.fsdp_checkpoints), so they carry over unchanged.  The data order carries
    over only with the same total batch: the Trainer skips the resumed step count times the *new* total
    batch of this epoch's (seeded, count-independent) order.  Each process's random state (dropout) is
    saved per rank, so under another count it restarts from the seed."""
    import json

    from tunesmith.core.training.checkpoint_files import step_of

    saved_by = len(list(checkpoint.glob("rng_state_*.pth"))) or int((checkpoint / "rng_state.pth").is_file())
    processes = config.train.gpus
    if saved_by in (0, processes):
        return None
    text = (
        f"{checkpoint.name} was saved by {saved_by} process(es) and resumes on {processes}: the LoRA weights "
        "and optimizer state carry over whole"
    )
    try:
        per_process = int(
            json.loads((checkpoint / "trainer_state.json").read_text("utf-8"))["train_batch_size"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        per_process = 0
    accum, step = config.train.grad_accum, step_of(checkpoint)
    before, now = saved_by * per_process * accum, processes * config.train.batch_size * accum
    if before == now:
        text += f"; the total batch is {now} rows per step as before, so the rows continue in the same order"
    elif before:
        text += (
            f"; the total batch changes from {before} to {now} rows per step, so the run goes on from row "
            f"{step * now} of this epoch's order, not row {step * before} (some rows are seen twice or not at "
            f"all this epoch); a batch size of {before / (processes * accum):g} per process would keep it"
        )
    return text + "; dropout's random numbers restart from the seed (they were saved per process)."


def kernel_notices(strategy: str, patch_kernels: bool) -> list[str]:
    """What a rank turns off of Tunesmith's kernels under `strategy`, in words (checked: the report)."""
    if not patch_kernels:
        return []
    if strategy == "fsdp2":
        return [
            "FSDP2: Tunesmith's kernels are off on every rank (their fused LoRA projections and NF4 "
            "dequantisation read whole weight tensors, which FSDP2 holds as shards); stock transformers."
        ]
    return [
        "DDP: the input embedding table stays on each GPU (DDP needs all of a model's weights on one "
        "kind of device); the other kernels are on, the host-memory budget shared among the ranks."
    ]
