"""One rank of a multi-GPU run, started by core.training.launcher through torchrun; never by hand.

`python -m torch.distributed.run ... -m tunesmith.core.training.rank_main SPEC` reads the spec the
launcher wrote (config, plan, run folder, checkpoint to resume) and trains with the same `TrainingRun`
as one GPU.  It differs only where ranks must agree or must not collide:

- the run folder is the parent's (made once), and only rank 0 writes metrics.jsonl and train.log;
- rank 0 prints every event as one JSON line after `EVENT_PREFIX` on stdout — the parent's one stream
  of events; the other ranks print only their failure;
- at each step end the ranks agree (one all-reduce of three flags) on saving, stopping, and whether
  the parent asked them to stop (its stop file) or has died, so every rank saves and stops at the same
  step;
- under FSDP2 Tunesmith's kernels are off; under DDP the embedding table stays on the GPU
  (core.training.multi_gpu.kernel_notices says why);
- under FSDP2 checkpoints are written whole, as one process writes them
  (core.training.fsdp_checkpoints), so any number of processes can resume them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import TrainerCallback

from tunesmith.core.config import RunConfig
from tunesmith.core.events import Event, Failed, Finished, LogLine
from tunesmith.core.training.engine import LOG_FILE, TrainingRun, _after, _attach_log_file
from tunesmith.core.training.multi_gpu import kernel_notices

if TYPE_CHECKING:
    from peft import PeftModel

EVENT_PREFIX = "@tunesmith-event "
PARENT_ENV = "TUNESMITH_PARENT_PID"  # set by the launcher
STOP_FILE = "stop-requested"  # in the run folder: the parent's Stop, seen by every rank at a step end


def parent_gone() -> bool:
    """Whether the process that started the ranks (the app or the CLI) has died: the ranks then stop as
    on Stop, with a checkpoint, rather than train on unseen in their own process group."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return False
    try:
        os.kill(int(parent), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def print_event(event: Event) -> None:
    """One event as one line on stdout, for the launcher (flushed: the parent shows it live)."""
    sys.stdout.write(EVENT_PREFIX + json.dumps(event.to_dict()) + "\n")
    sys.stdout.flush()


class StepAgreement(TrainerCallback):
    """Registered last, so at each step end it sees what the other callbacks decided on this rank."""

    def __init__(self, run: RankRun) -> None:
        self.run = run

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        """Say in the log how accelerate set the ranks up (what a reader of the log needs to trust it)."""
        from torch.distributed.tensor import DTensor

        params = list(model.parameters()) if model is not None else []
        sharded = sum(isinstance(p, DTensor) for p in params)
        how = (
            f"{sharded} of {len(params)} weight tensors sharded across them (FSDP2)"
            if sharded
            else "each holds the whole model (DDP)"
        )
        self.run._emit(LogLine("info", f"{args.world_size} ranks training: {how}"))

    def on_step_end(self, args, state, control, **kwargs):
        import torch
        import torch.distributed as dist

        stop_file = (self.run.run_dir or Path(".")) / STOP_FILE
        flags = torch.tensor(
            [control.should_save, control.should_training_stop, stop_file.exists() or parent_gone()],
            dtype=torch.int64,
            device=args.device,
        )
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        save, stop, stopped = (bool(v) for v in flags.tolist())
        if stopped and not self.run.cancelled:
            self.run.cancel()  # the Finished event then says "cancelled", as a one-GPU Stop does
        control.should_save = save or stopped
        control.should_training_stop = stop or stopped
        return control


class RankRun(TrainingRun):
    """TrainingRun as one rank of several (see the module docstring)."""

    one_rank = True

    def __init__(self, config: RunConfig, run_dir: Path, resume_from: str | None, strategy: str) -> None:
        self.rank = int(os.environ.get("RANK", "0"))
        super().__init__(config, print_event, resume_from=resume_from, extra_callbacks=[StepAgreement(self)])
        self._given_dir = run_dir
        self.strategy = strategy

    def setup_run_dir(self) -> None:
        self.run_dir = self._given_dir  # made by the parent, config.yaml written there
        if self.rank == 0:
            self._log_handler = _attach_log_file(self.run_dir / LOG_FILE)
        self._checkpoint = self._resume_from  # the parent chose it (and said which) from the folder

    def setup_model(self) -> None:
        from tunesmith.core.hardware import detect_hardware

        if detect_hardware().has_gpu:  # on the CPU the kernels are never patched in
            for notice in kernel_notices(self.strategy, self.config.model.patch_kernels):
                self._emit(LogLine("warning" if self.strategy == "fsdp2" else "info", notice))
            if self.strategy == "fsdp2":
                self.config.model.patch_kernels = False
        super().setup_model()

    def setup_trainer(self) -> None:
        super().setup_trainer()
        if self.strategy == "fsdp2":
            from tunesmith.core.training.fsdp_checkpoints import install_whole_checkpoints

            trainer = _after(self.trainer, "setup_trainer")
            _fsdp_on_cpu_processes(trainer)
            install_whole_checkpoints(trainer)  # so that another number of processes can resume them

    def save(self) -> Finished:
        """Rank 0 writes the adapter (under FSDP2 from the LoRA weights gathered by all ranks), the others
        wait for it, so every rank's Finished names a complete folder."""
        from typing import cast

        from tunesmith.core.training.engine import ADAPTER, _remove_tree
        from tunesmith.core.training.fsdp_checkpoints import whole_trainable_state

        trainer = _after(self.trainer, "setup_trainer")
        state = whole_trainable_state(trainer.model) if self.strategy == "fsdp2" else None
        if self.rank == 0:
            adapter_dir = _after(self.run_dir, "setup_run_dir") / ADAPTER
            tmp = adapter_dir.with_name(ADAPTER + ".tmp")
            model = cast("PeftModel", trainer.accelerator.unwrap_model(trainer.model))
            model.save_pretrained(str(tmp), state_dict=state)
            _after(self.tokenizer, "setup_model").save_pretrained(str(tmp))
            if adapter_dir.exists():  # a resumed run replaces its own earlier adapter
                _remove_tree(adapter_dir)
            tmp.rename(adapter_dir)
        trainer.accelerator.wait_for_everyone()
        return self._finish(trainer.state.global_step, cancelled=self.cancelled)

    def _emit(self, event: Event) -> None:
        if self.rank == 0:
            super()._emit(event)
        elif isinstance(event, Failed):
            print_event(event)


def _fsdp_on_cpu_processes(trainer) -> None:
    """accelerate 1.15 sets FSDP up only for GPU-like devices: AcceleratorState turns the Trainer's
    FSDP plugin into DistributedType.FSDP for MULTI_GPU, MULTI_NPU, ... but not MULTI_CPU, so CPU
    processes over gloo would silently run plain data parallel.  For the CPU check of the FSDP2 path,
    give the shared state the same plugin the GPU path gets; accelerate's own FSDP2 code does the rest."""
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin  # type: ignore[import-untyped]  # no stubs

    state = trainer.accelerator.state
    if state.distributed_type != DistributedType.MULTI_CPU or trainer.args.fsdp_plugin_args is None:
        return
    state.fsdp_plugin = FullyShardedDataParallelPlugin(**trainer.args.fsdp_plugin_args)
    state.distributed_type = DistributedType.FSDP
    trainer.is_fsdp_enabled = True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # "cuda" below means this rank's own card
    run = RankRun(
        RunConfig.from_dict(spec["config"]), Path(spec["run_dir"]), spec.get("resume_from"), spec["strategy"]
    )
    result = run.run()
    return 1 if isinstance(result, Failed) else 0


if __name__ == "__main__":
    sys.exit(main())
