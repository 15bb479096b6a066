"""DPO and GRPO through Tunesmith's engine on the GPU machine, on the anchor harness's workload.

    python3 bench/bench_rl.py --algo {dpo,grpo} --model DIR [--steps 6] [--fast-rollout on|off] --out R.json

The workload is `../shared/anchors/rl_bench.py`'s, so one GPU call can run both and compare them
(`.anchors/run_remote.sh rl ... grpo_trl dpo_trl` next to this script):
- model: a random-weight folder from the harness's `make_model.py` (`--arch qwen3-4b`), loaded by our
  engine in 4-bit NF4 (double quant, bf16 compute), LoRA r=16 alpha=16 dropout 0 on all 7 projections,
  gradient checkpointing on, our kernels patched in (the engine's default on CUDA);
- data: the harness's random "tN" word texts with the same generator seed, written as JSONL files the
  engine reads like a user's (GRPO: 64 prompts of 100 tokens; DPO: 32 pairs, 256-token prompt, 255-token
  chosen / rejected);
- GRPO: 4 completions per prompt, 1 prompt per step, 256 new tokens at temperature 1, KL weight 0, the
  harness's length reward (from a reward file, as a user would give it); DPO: 2 pairs per step, beta 0.1,
  reference = the adapter switched off;
- AdamW (torch), lr 1e-5 constant, no warm-up, no weight decay, seed 0.
Measured like the harness: each optimizer step between on_step_begin and on_step_end with CUDA
synchronised, GRPO split into generation (`_generate_single_turn`) and the rest; median over steps
2..N; peak allocated memory through step 1 (load included) and per step after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from tunesmith.core.config import RunConfig
from tunesmith.core.events import LogLine, StepMetrics
from tunesmith.core.training.engine import TrainingRun

GiB = 1024**3
REWARD_FILE = '''
TARGET_CHARS = 896


def reward_len(prompts, completions, **kw):
    """Minus the distance of the completion length (characters) to 896, over 896 (the harness's)."""
    return [-abs(len(c) - TARGET_CHARS) / TARGET_CHARS for c in completions]
'''


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--algo", required=True, choices=["dpo", "grpo"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--fast-rollout", choices=["on", "off"], default="on")
    ap.add_argument("--num-generations", type=int, default=4, help="GRPO completions per prompt")
    ap.add_argument("--grpo-batch", type=int, default=4, help="GRPO completions per step")
    ap.add_argument("--max-completion-length", type=int, default=256)
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--checkpointing", choices=["offload", "device", "none"], default="offload",
        help="how the kernels checkpoint decoder layers (offload: the engine's choice; for comparison only)",
    )  # fmt: skip
    ap.add_argument("--phases", action="store_true", help="DPO: time the forward and TRL's toggles too")
    ap.add_argument(
        "--precompute-ref", type=int, default=0, metavar="BATCH",
        help="DPO: TRL's precompute_ref_log_probs with this batch size (0: a reference pass every step)",
    )  # fmt: skip
    ap.add_argument(
        "--smoke", action="store_true", help="CPU, full precision, tiny lengths: tests the script"
    )
    return ap.parse_args()


def rand_text(g: torch.Generator, n: int, vocab_text: int) -> str:
    return " ".join(f"t{i}" for i in torch.randint(0, vocab_text, (n,), generator=g).tolist())


def write_data(algo: str, folder: Path, model_type: str) -> Path:
    """The harness's rows (same generator and seed), as the JSONL a user would pick."""
    vocab_text = 151643 if model_type == "qwen3" else 128000
    g = torch.Generator().manual_seed(1234)
    if algo == "grpo":
        rows = [{"prompt": rand_text(g, 100, vocab_text)} for _ in range(64)]
    else:
        rows = [
            {"prompt": rand_text(g, 256, vocab_text), "chosen": " " + rand_text(g, 255, vocab_text),
             "rejected": " " + rand_text(g, 255, vocab_text)}
            for _ in range(32)
        ]  # fmt: skip
    path = folder / f"{algo}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_config(args: argparse.Namespace, data: Path, reward: Path, out: Path) -> RunConfig:
    config = RunConfig(output_dir=str(out))
    config.model.source = args.model
    config.model.precision = "4bit"
    config.lora.r, config.lora.alpha, config.lora.dropout = 16, 16, 0.0
    config.data.path = str(data)
    config.data.max_length = 256 + 256 + 64
    t = config.train
    t.method, t.max_steps, t.seed = args.algo, args.steps, 0
    t.learning_rate, t.lr_scheduler, t.warmup_steps, t.weight_decay = 1e-5, "constant", 0, 0.0
    t.optimizer, t.gradient_checkpointing, t.logging_steps = "adamw", True, 1
    if args.algo == "grpo":
        t.batch_size, t.num_generations, t.kl_weight = args.grpo_batch, args.num_generations, 0.0
        t.max_completion_length = args.max_completion_length
        config.data.max_length = 100 + args.max_completion_length + 64
        t.reward_file = str(reward)
        if hasattr(t, "fast_rollout"):
            t.fast_rollout = args.fast_rollout == "on"
    else:
        t.batch_size, t.beta = 2, 0.1
    if args.smoke:  # the CPU cannot load 4-bit; short completions keep it to seconds
        config.model.precision, t.max_completion_length = "auto", 8
    return config


CUDA = torch.cuda.is_available()
# BENCH_PROFILE_STEP=N: a torch.profiler table (CUDA kernels and CPU ops) of step N, next to --out
PROFILE_STEP = int(__import__("os").environ.get("BENCH_PROFILE_STEP", "0"))


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / GiB if CUDA else 0.0


class StepTimer(TrainerCallback):
    """Step times and peaks like the harness's callback; `phases` is filled by the timed trainer methods."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.phases: dict[str, float] = {}
        self.peaks: dict[str, float] = {}  # peak allocated GiB from the step's start to a phase's end
        self.t0 = 0.0
        self.peak_through_step1 = 0.0

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step >= 1 and CUDA:
            torch.cuda.reset_peak_memory_stats()
        self.phases.clear()
        self.peaks.clear()
        if CUDA and state.global_step + 1 == PROFILE_STEP:
            from torch.profiler import ProfilerActivity, profile

            self.prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
            self.prof.__enter__()
        sync()
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        sync()
        dt = time.perf_counter() - self.t0
        if getattr(self, "prof", None) is not None:
            self.prof.__exit__(None, None, None)
            avg = self.prof.key_averages()
            self.profile_table = avg.table(sort_by="self_device_time_total", row_limit=30)
            self.profile_cpu = avg.table(sort_by="self_cpu_time_total", row_limit=30)
            self.prof = None
        rec = {"step": state.global_step, "step_s": dt, "peak_alloc_GiB": peak_gib()}
        rec.update({f"{k}_s": v for k, v in self.phases.items()})
        rec.update({f"{k}_peak_GiB": v for k, v in self.peaks.items()})
        if "gen_and_score" in self.phases:
            rec["train_s"] = dt - self.phases["gen_and_score"]
        if state.global_step == 1:
            self.peak_through_step1 = rec["peak_alloc_GiB"]
        self.steps.append(rec)
        print(f"step {state.global_step}: " + " ".join(f"{k}={v:.3f}" for k, v in rec.items() if k != "step"),
              flush=True)  # fmt: skip


def comparison_hooks(args: argparse.Namespace) -> None:
    """The variants of --checkpointing and --precompute-ref, put in place before the run builds anything."""
    if args.checkpointing != "offload":
        import tunesmith.kernels as kernels

        stock_patch = kernels.patch_model

        def patch_model(model, **kw):
            kw["checkpointing"] = "device"
            if args.checkpointing == "none":  # no layer checkpointed: every activation stays in VRAM
                kw["keep_layers"] = 10**6
            return stock_patch(model, **kw)

        kernels.patch_model = patch_model
    if args.precompute_ref:
        import trl

        class PrecomputingDPOConfig(trl.DPOConfig):
            def __post_init__(self):
                self.precompute_ref_log_probs = True
                self.precompute_ref_batch_size = args.precompute_ref
                super().__post_init__()

        trl.DPOConfig = PrecomputingDPOConfig


def time_checkpointing_toggles(timer: StepTimer) -> None:
    """TRL's reference pass turns gradient checkpointing off and on again each step: time that."""
    from transformers import PreTrainedModel

    for name in ("gradient_checkpointing_enable", "gradient_checkpointing_disable"):
        setattr(
            PreTrainedModel, name, timed(timer, "gc_toggle", getattr(PreTrainedModel, name), sync_gpu=False)
        )


def timed(timer: StepTimer, name: str, fn, sync_gpu: bool = True):
    """fn, adding its time to the step's phase `name`; sync_gpu=False: host time only (no drain)."""

    def wrapper(*a, **k):
        if sync_gpu:
            sync()
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            if sync_gpu:
                sync()
            timer.phases[name] = timer.phases.get(name, 0.0) + time.perf_counter() - t
            timer.peaks[name] = peak_gib()

    return wrapper


def main() -> int:
    args = parse()
    t_start = time.perf_counter()
    model_type = json.loads((Path(args.model) / "config.json").read_text()).get("model_type", "")
    work = Path(tempfile.mkdtemp(prefix="bench_rl_"))
    data = write_data(args.algo, work, model_type)
    reward = work / "length_reward.py"
    reward.write_text(REWARD_FILE)
    events: list = []

    def on_event(event) -> None:
        events.append(event)
        if isinstance(event, LogLine):
            print(f"[{event.level}] {event.message}", flush=True)

    timer = StepTimer()
    comparison_hooks(args)
    run = TrainingRun(run_config(args, data, reward, work / "runs"), on_event, extra_callbacks=[timer])
    run.config.validate()
    run.setup_run_dir()
    run.setup_model()
    run.setup_data()
    t_trainer = time.perf_counter()
    run.setup_trainer()  # with --precompute-ref: the reference pass over the whole dataset
    setup_trainer_s = time.perf_counter() - t_trainer
    trainer = run.trainer
    if args.algo == "dpo" and args.phases:  # synchronises mid-step: a separate run from the timed one
        trainer.compute_loss = timed(timer, "forward", trainer.compute_loss)
        time_checkpointing_toggles(timer)
    for method, name in (
        ("_generate_single_turn", "generate"),
        ("_generate_and_score_completions", "gen_and_score"),
    ):
        if hasattr(trainer, method):
            setattr(trainer, method, timed(timer, name, getattr(trainer, method)))
    t_train = time.perf_counter()
    run.train()
    sync()
    steps = [s for s in timer.steps if s["step"] >= 2]
    metrics = [e for e in events if isinstance(e, StepMetrics)]
    summary = {
        "algo": args.algo,
        "system": "tunesmith" + ("" if args.algo == "dpo" else f" (fast rollout {args.fast_rollout})"),
        "gpu": torch.cuda.get_device_name() if CUDA else "cpu (smoke)",
        "steps": timer.steps,
        "median_step_s": statistics.median(s["step_s"] for s in steps) if steps else None,
        "peak_alloc_incl_load_GiB": timer.peak_through_step1,
        "peak_alloc_after_step1_GiB": max((s["peak_alloc_GiB"] for s in steps), default=None),
        "losses": [m.loss for m in metrics],
        "extra_last": metrics[-1].extra if metrics else {},
        "setup_s": t_train - t_start,
        "setup_trainer_s": setup_trainer_s,
        "variant": {
            "checkpointing": args.checkpointing,
            "precompute_ref": args.precompute_ref,
            "phases": args.phases,
        },
        "log": [e.message for e in events if isinstance(e, LogLine)],
    }
    for key in ("generate_s", "train_s", "forward_s", "gc_toggle_s"):
        values = [s[key] for s in steps if key in s]
        if values:
            summary[f"median_{key}"] = statistics.median(values)
    Path(args.out).write_text(json.dumps(summary, indent=1, default=str))
    if getattr(timer, "profile_table", None):
        Path(args.out).with_suffix(".profile.txt").write_text(
            timer.profile_table + "\n\n" + timer.profile_cpu
        )
    run.cleanup()
    print(json.dumps({k: v for k, v in summary.items() if k not in ("steps", "log")}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
