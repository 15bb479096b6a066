"""Several GPUs through accelerate, checked on the CPU: the plan (DDP or FSDP2) from the memory arithmetic,
the launcher's one event stream and its Stop, DDP and FSDP2 on two gloo processes against one process,
and their checkpoints resumed on another number of processes.

The training tests use a tiny random Llama (2 layers, width 32, SmolLM2's tokenizer) built here and saved
with safetensors: two ranks of the 135M demo model would not fit the suite's time on 2 cores.  Measured
on 2 shared cores: the DDP test 22-70 s, the FSDP2 test (two launches, one resume in this process)
33-55 s, by the machine's load.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from tunesmith.core.config import ConfigError, RunConfig
from tunesmith.core.events import CheckpointSaved, Failed, Finished, LogLine, RunStarted, StepMetrics
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.training.multi_gpu import CPU_RANKS_ENV, STRATEGY_ENV, plan_parallel, trainer_arguments

H100S = HardwareInfo("cuda", "H100", (9, 0), 80.0, 79.0, 512.0, 64, "2.11", "12.8", "3.6", "0.49", "3.11", 4)
RTX3090S = HardwareInfo(
    "cuda", "RTX 3090", (8, 6), 24.0, 23.5, 64.0, 16, "2.11", "12.8", "3.6", "0.49", "3.11", 2
)
NO_GPU = HardwareInfo("cpu", None, None, 0.0, 0.0, 24.0, 2, "2.13", None, None, None, "3.11")
LLAMA_70B = {
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def gpus_config(gpus: int, precision: str = "4bit") -> RunConfig:
    config = RunConfig()
    config.model.precision, config.model.patch_kernels = precision, False
    config.data.max_length, config.train.batch_size, config.train.gpus = 2048, 2, gpus
    return config


def test_the_plan_is_ddp_when_one_card_holds_the_run_fsdp2_when_only_the_cards_together_do(
    tmp_path, demo_model_dir, monkeypatch
):
    monkeypatch.delenv(STRATEGY_ENV, raising=False)
    monkeypatch.delenv(CPU_RANKS_ENV, raising=False)
    small = plan_parallel(gpus_config(2), RTX3090S, str(demo_model_dir))
    assert (small.strategy, small.processes, small.backend) == ("ddp", 2, "nccl")
    assert "DDP on 2 GPUs" in small.reason and "holds the whole model" in small.reason

    big = tmp_path / "llama70b"
    big.mkdir()
    (big / "config.json").write_text(json.dumps(LLAMA_70B))
    sharded = plan_parallel(gpus_config(4, "bf16"), H100S, str(big))  # ~140 GB of bf16 weights
    assert sharded.strategy == "fsdp2" and "FSDP2 on 4 GPUs" in sharded.reason
    assert "per card" in sharded.reason
    with pytest.raises(ConfigError) as refused:  # two 24 GB cards cannot hold 70B in bf16, even sharded
        plan_parallel(gpus_config(2, "bf16"), RTX3090S, str(big))
    assert "train.gpus is 2" in str(refused.value) and "per card" in str(refused.value)
    # 4-bit weights (~37 GiB for 70B) stay whole on every card under FSDP2 (accelerate 1.15): more
    # cards do not make them fit 24 GB ones
    with pytest.raises(ConfigError, match="not 4-bit ones"):
        plan_parallel(gpus_config(2, "4bit"), RTX3090S, str(big))
    assert plan_parallel(gpus_config(2, "4bit"), H100S, str(big)).strategy == "ddp"  # fits one 80 GB card

    with pytest.raises(ConfigError, match="has 2 CUDA GPU"):
        plan_parallel(gpus_config(4), RTX3090S, str(demo_model_dir))
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        plan_parallel(gpus_config(2), NO_GPU)
    monkeypatch.setenv(CPU_RANKS_ENV, "1")
    cpu = plan_parallel(gpus_config(2), NO_GPU)
    assert (cpu.strategy, cpu.backend) == ("ddp", "gloo")
    monkeypatch.setenv(STRATEGY_ENV, "zero3")
    with pytest.raises(ConfigError, match="ddp, fsdp2"):
        plan_parallel(gpus_config(2), NO_GPU)

    monkeypatch.setenv("WORLD_SIZE", "1")
    assert trainer_arguments() == {}  # one process: the Trainer's own defaults
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(STRATEGY_ENV, "fsdp2")
    fsdp = trainer_arguments()
    assert fsdp["fsdp_config"]["version"] == 2 and "full_shard" in fsdp["fsdp"]


def test_resuming_on_another_count_says_what_carries_over_and_what_the_data_order_does(tmp_path):
    from tunesmith.core.training.multi_gpu import resume_notice

    checkpoint = tmp_path / "checkpoint-3"  # as 2 ranks of 2 rows each left it
    checkpoint.mkdir()
    for rank in (0, 1):
        (checkpoint / f"rng_state_{rank}.pth").write_bytes(b"x")
    (checkpoint / "trainer_state.json").write_text(json.dumps({"train_batch_size": 2, "global_step": 3}))
    config = RunConfig()
    config.train.grad_accum, config.train.gpus, config.train.batch_size = 1, 2, 2
    assert resume_notice(checkpoint, config) is None  # the same count: nothing changes

    config.train.gpus, config.train.batch_size = 1, 4
    same = str(resume_notice(checkpoint, config))
    assert "saved by 2 process(es) and resumes on 1" in same and "optimizer state carry over whole" in same
    assert "4 rows per step as before, so the rows continue in the same order" in same

    config.train.batch_size = 2  # the per-GPU batch kept: half the total batch
    changed = str(resume_notice(checkpoint, config))
    assert (
        "changes from 4 to 2 rows per step" in changed
        and "from row 6 of this epoch's order, not row 12" in changed
    )
    assert "a batch size of 4 per process would keep it" in changed

    config.train.gpus = 2
    (checkpoint / "rng_state_1.pth").unlink()
    (checkpoint / "rng_state_0.pth").rename(checkpoint / "rng_state.pth")  # one process saved this one
    assert "saved by 1 process(es) and resumes on 2" in str(resume_notice(checkpoint, config))


# A stand-in for torchrun: prints library noise and rank 0's events, and ends when the stop file appears.
_FAKE_RANKS = """
import json, sys, time, pathlib
P = "@tunesmith-event "
stop = pathlib.Path(sys.argv[1])
print("some library warning on stdout", flush=True)
print(P + json.dumps({"event": "log", "level": "info", "message": "rank 0 here"}), flush=True)
if sys.argv[2] == "crash":
    print("Traceback: CUDA error: out of memory", flush=True)
    sys.exit(3)
while not stop.exists():
    time.sleep(0.05)
print(P + json.dumps({"event": "checkpoint", "step": 2, "path": "x/checkpoint-2"}), flush=True)
print(P + json.dumps({"event": "finished", "run_dir": "x", "adapter_dir": "x/adapter", "step": 2,
      "final_loss": 1.5, "cancelled": True}), flush=True)
"""


def test_the_launcher_turns_rank_output_into_one_stream_stops_every_rank_and_reports_a_crash(tmp_path):
    from tunesmith.core.training.engine import TrainingRun
    from tunesmith.core.training.launcher import Ranks

    events: list = []
    run = TrainingRun(RunConfig(), events.append)
    run.run_dir = tmp_path
    stop = tmp_path / "stop-requested"

    def listener(event):
        events.append(event)
        if isinstance(event, LogLine) and event.message == "rank 0 here":
            run.cancel()  # the app's Stop button, while the ranks train

    run._on_event = listener
    result = Ranks([sys.executable, "-c", _FAKE_RANKS, str(stop), "train"], dict(os.environ)).follow(
        run, stop
    )
    assert isinstance(result, Finished) and result.cancelled and result.step == 2
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["LogLine", "LogLine", "CheckpointSaved", "Finished"], kinds  # rank 0's, in order
    assert "Stopping every rank" in events[1].message
    assert not stop.exists()  # cleared for a later resume of the same folder
    assert not any("library warning" in getattr(e, "message", "") for e in events)

    events.clear()
    run = TrainingRun(RunConfig(), events.append)
    run.run_dir = tmp_path
    crashed = Ranks([sys.executable, "-c", _FAKE_RANKS, str(stop), "crash"], dict(os.environ)).follow(
        run, stop
    )
    assert isinstance(crashed, Failed) and "exit code 3" in crashed.message
    assert "out of memory" in crashed.details and events[-1] == crashed


def test_ranks_see_when_the_process_that_started_them_has_died(monkeypatch):
    import subprocess

    from tunesmith.core.training.rank_main import PARENT_ENV, parent_gone

    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert not parent_gone()  # started by hand: no parent to watch
    monkeypatch.setenv(PARENT_ENV, str(os.getpid()))
    assert not parent_gone()
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # reaped: its id names no process now
    monkeypatch.setenv(PARENT_ENV, str(finished.pid))
    assert parent_gone()


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer Llama of width 32 with random weights and SmolLM2's tokenizer, as a safetensors folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunesmith.core.models.sources import load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = load_tokenizer("demo")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_run_config(model: Path, output: Path, gpus: int, batch_size: int, steps: int) -> RunConfig:
    config = RunConfig(output_dir=str(output))
    config.model.source, config.model.precision = str(model), "fp32"
    config.data.max_length = 64
    config.lora.r, config.lora.alpha, config.lora.dropout = 4, 8, 0.0  # no dropout: nothing random per rank
    config.train.max_steps, config.train.batch_size, config.train.gpus = steps, batch_size, gpus
    config.train.learning_rate, config.train.lr_scheduler = 1e-2, "constant"
    config.train.checkpoint_minutes = 0
    return config


class AdapterEachStep(TrainerCallback):
    """Records the LoRA weights after every optimizer step (the keys the adapter file holds)."""

    def __init__(self):
        self.weights: dict[int, dict] = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        from peft import get_peft_model_state_dict

        self.weights[state.global_step] = {
            k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()
        }


STEPS = 6  # enough that a Stop asked for at step 1 reaches the ranks before the end


def step_losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, StepMetrics)}


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_equals_one_process_and_resumes_on_one(tiny_llama, tmp_path, monkeypatch):
    """Same global batch (2 ranks x 2 rows = 1 process x 4 rows): the same losses and LoRA weights to fp32
    rounding; Stop stops both ranks at one step with one checkpoint, which one process resumes exactly."""
    import torch
    from safetensors.torch import load_file

    from tunesmith.core.training.engine import TrainingRun

    monkeypatch.setenv(CPU_RANKS_ENV, "1")
    monkeypatch.delenv(STRATEGY_ENV, raising=False)
    recorder = AdapterEachStep()
    single: list = []
    one = TrainingRun(
        tiny_run_config(tiny_llama, tmp_path / "one", 1, 4, STEPS), single.append, extra_callbacks=[recorder]
    )
    assert isinstance(one.run(), Finished)
    expected = step_losses(single)
    assert sorted(expected) == list(range(1, STEPS + 1)) and expected[STEPS] < expected[1]

    events: list = []
    ddp = TrainingRun(tiny_run_config(tiny_llama, tmp_path / "two", 2, 2, STEPS), None)
    ddp._on_event = lambda e: (events.append(e), isinstance(e, StepMetrics) and e.step == 1 and ddp.cancel())
    stopped = ddp.run()
    assert isinstance(stopped, Finished), getattr(stopped, "details", "")
    assert stopped.cancelled and 1 <= stopped.step < STEPS  # Stop reached every rank before the end
    logs = " ".join(e.message for e in events if isinstance(e, LogLine))
    assert (
        "2 CPU processes over gloo (DDP)" in logs and "2 ranks training: each holds the whole model" in logs
    )
    assert sum(isinstance(e, RunStarted) for e in events) == 1  # one stream: rank 0's events only
    got = step_losses(events)
    assert sorted(got) == list(range(1, stopped.step + 1))
    for step, loss in got.items():
        assert loss == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    adapter = load_file(str(Path(stopped.adapter_dir) / "adapter_model.safetensors"))
    reference = recorder.weights[stopped.step]
    assert adapter.keys() == reference.keys()
    for name, weight in adapter.items():
        torch.testing.assert_close(weight, reference[name], rtol=1e-5, atol=1e-6, msg=name)
    saved = [e for e in events if isinstance(e, CheckpointSaved)]
    assert [e.step for e in saved] == [stopped.step]
    checkpoint = Path(saved[0].path)
    assert {"rng_state_0.pth", "rng_state_1.pth", "optimizer.pt"} <= {p.name for p in checkpoint.iterdir()}
    lines = (Path(stopped.run_dir) / "metrics.jsonl").read_text().splitlines()
    assert sum('"event": "started"' in line for line in lines) == 1  # written once, by rank 0

    # The same folder resumed by one process with the same global batch: the same remaining steps.
    resumed_events: list = []
    config = tiny_run_config(tiny_llama, tmp_path / "two", 1, 4, STEPS)
    resumed = TrainingRun(config, resumed_events.append, resume_from=stopped.run_dir).run()
    assert isinstance(resumed, Finished) and resumed.step == STEPS, getattr(resumed, "details", "")
    for step, loss in step_losses(resumed_events).items():
        assert loss == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    final = load_file(str(Path(resumed.adapter_dir) / "adapter_model.safetensors"))
    for name, weight in final.items():
        torch.testing.assert_close(weight, recorder.weights[STEPS][name], rtol=1e-5, atol=1e-6, msg=name)


FSDP_STEPS = 8  # room for a Stop on 2 processes, one step on 1, and the rest on 2 again


@pytest.mark.slow
def test_fsdp2_on_two_cpu_processes_trains_shards_and_resumes_on_another_count(
    tiny_llama, tmp_path, monkeypatch
):
    """Sharded across 2 gloo processes, the same losses as 1 process with the same global batch.  Stop keeps
    a checkpoint written whole (1 process's LoRA weights and optimizer state at that step, no shards),
    which 1 process resumes with the same losses; 2 FSDP2 processes resume that 1-process checkpoint to the
    end, again with the same losses and final LoRA weights; the adapter is whole."""
    import torch
    from safetensors.torch import load_file

    from tunesmith.core.training.engine import TrainingRun

    monkeypatch.setenv(CPU_RANKS_ENV, "1")
    recorder = AdapterEachStep()
    single: list = []
    reference = TrainingRun(
        tiny_run_config(tiny_llama, tmp_path / "one", 1, 4, FSDP_STEPS),
        single.append,
        extra_callbacks=[recorder],
    )
    assert isinstance(reference.run(), Finished)
    expected = step_losses(single)
    assert expected[FSDP_STEPS] < expected[1]

    monkeypatch.setenv(STRATEGY_ENV, "fsdp2")
    events: list = []
    run = TrainingRun(tiny_run_config(tiny_llama, tmp_path / "two", 2, 2, FSDP_STEPS), None)
    run._on_event = lambda e: (events.append(e), isinstance(e, StepMetrics) and e.step == 1 and run.cancel())
    stopped = run.run()
    assert isinstance(stopped, Finished) and stopped.cancelled, getattr(stopped, "details", "")
    assert 1 <= stopped.step < FSDP_STEPS - 1
    logs = " ".join(e.message for e in events if isinstance(e, LogLine))
    assert "over gloo (FSDP2)" in logs and "48 of 48 weight tensors sharded across them" in logs
    adapter = load_file(str(Path(stopped.adapter_dir) / "adapter_model.safetensors"))
    assert adapter and all(w.shape[0] in (4, 16, 32, 64) for w in adapter.values())  # whole, not shards

    # The checkpoint: what 1 process would have saved at that step, no torch.distributed.checkpoint shards
    checkpoint = Path(str(stopped.last_checkpoint))
    assert not [p.name for p in checkpoint.iterdir() if "fsdp" in p.name or p.name == "optimizer_0"]
    saved = load_file(str(checkpoint / "adapter_model.safetensors"))
    assert saved.keys() == recorder.weights[stopped.step].keys()
    for name, weight in saved.items():
        torch.testing.assert_close(
            weight, recorder.weights[stopped.step][name], rtol=1e-5, atol=1e-6, msg=name
        )
    optimizer = torch.load(checkpoint / "optimizer.pt", weights_only=True)
    assert len(optimizer["state"]) == len(saved)  # Adam's moments of every LoRA tensor, whole
    assert {int(s["step"]) for s in optimizer["state"].values()} == {stopped.step}
    assert sum(s["exp_avg"].numel() for s in optimizer["state"].values()) == sum(
        w.numel() for w in saved.values()
    )

    # 1 process (4 rows: the same total batch) resumes it, for one step and a Stop
    monkeypatch.delenv(STRATEGY_ENV)
    one_events: list = []
    one = TrainingRun(
        tiny_run_config(tiny_llama, tmp_path / "two", 1, 4, FSDP_STEPS), None, resume_from=stopped.run_dir
    )
    one._on_event = lambda e: (one_events.append(e), isinstance(e, StepMetrics) and one.cancel())
    on_one = one.run()
    assert isinstance(on_one, Finished) and on_one.cancelled, getattr(on_one, "details", "")
    assert stopped.step < on_one.step < FSDP_STEPS
    notice = " ".join(e.message for e in one_events if isinstance(e, LogLine))
    assert f"checkpoint-{stopped.step} was saved by 2 process(es) and resumes on 1" in notice
    assert "the total batch is 4 rows per step as before, so the rows continue in the same order" in notice

    # 2 FSDP2 processes resume the 1-process checkpoint to the end
    monkeypatch.setenv(STRATEGY_ENV, "fsdp2")
    two_events: list = []
    config = tiny_run_config(tiny_llama, tmp_path / "two", 2, 2, FSDP_STEPS)
    again = TrainingRun(config, two_events.append, resume_from=stopped.run_dir).run()
    assert isinstance(again, Finished) and again.step == FSDP_STEPS, getattr(again, "details", "")
    assert any("was saved by 1 process(es) and resumes on 2" in getattr(e, "message", "") for e in two_events)
    got = {**step_losses(events), **step_losses(one_events), **step_losses(two_events)}
    assert sorted(got) == sorted(expected)
    for step, loss in got.items():
        assert loss == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    final = load_file(str(Path(again.adapter_dir) / "adapter_model.safetensors"))
    for name, weight in final.items():
        torch.testing.assert_close(weight, recorder.weights[FSDP_STEPS][name], rtol=1e-5, atol=1e-6, msg=name)
