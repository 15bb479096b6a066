"""FSDP2 checkpoints written whole, so that any number of processes (one included) can resume them.

The Trainer would save an FSDP2 run's adapter and optimizer state as torch.distributed.checkpoint
shards (`pytorch_model_fsdp_0/`, `optimizer_0/`).  DCP can reshard those onto another number of FSDP2
ranks, but a one-process run cannot load them (the Trainer refuses an FSDP checkpoint without FSDP),
and a DDP run neither.  What changes between steps is small — the LoRA weights and their optimizer
state, some MB to a few GB even for a 70B model, while the frozen base weights are reloaded from the
model's own files on resume — so under FSDP2 the ranks gather exactly that to rank 0 with torch's
own `get_model_state_dict` / `get_optimizer_state_dict` (full_state_dict, frozen weights left out)
and rank 0 writes the files a one-process checkpoint has: `adapter_model.safetensors` (+ its config),
`optimizer.pt` keyed by position as `Optimizer.state_dict()` keys it, `scheduler.pt`.  On resume
under FSDP2 every rank reads those small files and `set_model_state_dict` / `set_optimizer_state_dict`
shard them onto however many ranks there are now.  One layout for every count and strategy: a DDP or
one-process checkpoint resumes under FSDP2 as well.  The optimizer state moves whole, so a resume on
another count continues with the same Adam moments and step count.

Installed on the Trainer of each FSDP2 rank by core.training.rank_main; the Trainer's own code still
writes the RNG, trainer state and scheduler around it (core.training.checkpoints makes it atomic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.core.models.init_adapter import ADAPTER_WEIGHTS as ADAPTER_FILE  # peft's file name

OPTIMIZER_FILE = "optimizer.pt"  # transformers' OPTIMIZER_NAME
SCHEDULER_FILE = "scheduler.pt"  # transformers' SCHEDULER_NAME


def install_whole_checkpoints(trainer: Any) -> None:
    """Make this FSDP2 Trainer save and resume checkpoints whole (see the module docstring)."""

    def save_optimizer_and_scheduler(output_dir: str) -> None:
        save_whole(trainer, Path(output_dir))

    def load_from_checkpoint(resume_from_checkpoint: str, model: Any = None) -> None:
        load_adapter(trainer, Path(resume_from_checkpoint))

    def load_optimizer_and_scheduler(checkpoint: str | None) -> None:
        if checkpoint is not None:
            load_optimizer(trainer, Path(checkpoint))

    # Under FSDP the Trainer's save_model writes nothing for a sharded state dict type (the adapter went
    # into _save_optimizer_and_scheduler's DCP folders), so these three are the whole model/optimizer I/O.
    trainer._save_optimizer_and_scheduler = save_optimizer_and_scheduler
    trainer._load_from_checkpoint = load_from_checkpoint
    trainer._load_optimizer_and_scheduler = load_optimizer_and_scheduler


def whole_trainable_state(model: Any) -> dict:
    """The trainable weights (LoRA's) gathered whole on rank 0, on the CPU; empty on the other ranks.
    A collective step: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    return get_model_state_dict(model, options=options)


def save_whole(trainer: Any, folder: Path) -> None:
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    model = trainer.model_wrapped
    adapter = whole_trainable_state(model)
    by_name = get_optimizer_state_dict(
        model,
        _torch_optimizer(trainer.optimizer),
        options=StateDictOptions(full_state_dict=True, cpu_offload=True),
    )
    if not trainer.accelerator.is_main_process:
        return
    folder.mkdir(parents=True, exist_ok=True)
    trainer.accelerator.unwrap_model(model).save_pretrained(str(folder), state_dict=adapter)
    torch.save(_keyed_by_position(by_name), folder / OPTIMIZER_FILE)
    torch.save(trainer.lr_scheduler.state_dict(), folder / SCHEDULER_FILE)


def load_adapter(trainer: Any, checkpoint: Path) -> None:
    """The checkpoint's LoRA weights into this rank's shards (every rank reads the small file)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    file = checkpoint / ADAPTER_FILE
    if not file.is_file():
        raise ValueError(f"{checkpoint}: no {ADAPTER_FILE}, so its LoRA weights cannot be resumed")
    saved = load_file(str(file))
    model = trainer.model_wrapped
    peft_model = trainer.accelerator.unwrap_model(model)
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    # peft's own key mapping (it drops the adapter's name); it passes the values through, so the
    # parameter objects say which model key each file key is
    file_keys = get_peft_model_state_dict(
        peft_model, state_dict=trainable, adapter_name=peft_model.active_adapter
    )
    model_key = {id(p): name for name, p in trainable.items()}
    names = {key: model_key[id(p)] for key, p in file_keys.items()}
    if saved.keys() != names.keys():
        extra, missing = sorted(saved.keys() - names.keys()), sorted(names.keys() - saved.keys())
        raise ValueError(
            f"{file} does not match this run's LoRA weights (unexpected: {extra[:3]}, missing: "
            f"{missing[:3]}): resume with the same model and LoRA settings as the run that saved it."
        )
    options = StateDictOptions(full_state_dict=True, strict=False)  # the frozen base weights stay
    set_model_state_dict(model, {names[key]: value for key, value in saved.items()}, options=options)


def load_optimizer(trainer: Any, checkpoint: Path) -> None:
    """The checkpoint's whole optimizer state sharded onto this rank, then the scheduler's."""
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    optimizer = _torch_optimizer(trainer.optimizer)
    model = trainer.model_wrapped
    saved = torch.load(checkpoint / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    name_of = {p: name for name, p in model.named_parameters()}
    order = [name_of[p] for group in optimizer.param_groups for p in group["params"]]
    positions = [i for group in saved["param_groups"] for i in group["params"]]
    if len(positions) != len(order):
        raise ValueError(
            f"{checkpoint / OPTIMIZER_FILE} holds the state of {len(positions)} tensors, this run trains "
            f"{len(order)}: resume with the same model and LoRA settings as the run that saved it."
        )
    # Positions are matched in order, as Optimizer.load_state_dict matches them; torch's
    # set_optimizer_state_dict wants the parameters' names instead.
    name = dict(zip(positions, order, strict=True))
    by_name: dict[str, Any] = {
        "state": {name[i]: value for i, value in saved["state"].items()},
        "param_groups": [{**g, "params": [name[i] for i in g["params"]]} for g in saved["param_groups"]],
    }
    set_optimizer_state_dict(model, optimizer, by_name, options=StateDictOptions(full_state_dict=True))
    scheduler = torch.load(checkpoint / SCHEDULER_FILE, weights_only=True)
    trainer.lr_scheduler.load_state_dict(scheduler)


def _keyed_by_position(by_name: dict) -> dict:
    """torch's name-keyed optimizer state in Optimizer.state_dict()'s own form (parameters numbered in
    group order), which a one-process Trainer's `optimizer.load_state_dict` reads."""
    order = [name for group in by_name["param_groups"] for name in group["params"]]
    position = {name: i for i, name in enumerate(order)}
    return {
        "state": {position[name]: value for name, value in by_name["state"].items()},
        "param_groups": [
            {**g, "params": [position[n] for n in g["params"]]} for g in by_name["param_groups"]
        ],
    }


def _torch_optimizer(optimizer: Any) -> Any:
    """The torch optimizer under accelerate's wrapper (torch's state-dict helpers step it to initialise
    its state, which must not step the wrapper's gradient scaler)."""
    from accelerate.optimizer import AcceleratedOptimizer  # type: ignore[import-untyped]  # no stubs

    while isinstance(optimizer, AcceleratedOptimizer):
        optimizer = optimizer.optimizer
    return optimizer
