"""The training engine on the embedded model, on the CPU: loss falls, cancel, resume, out of memory.

Runs are tiny (max_length 64, LoRA r=4) but real: SmolLM2-135M through TRL's SFTTrainer.
"""

import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from tunesmith.core.config import RunConfig
from tunesmith.core.events import (
    CheckpointSaved,
    EvalMetrics,
    Failed,
    Finished,
    RunStarted,
    StepMetrics,
    event_from_dict,
)
from tunesmith.core.training.engine import TrainingRun

pytestmark = pytest.mark.slow


def tiny_config(tmp_path: Path, steps: int) -> RunConfig:
    config = RunConfig(output_dir=str(tmp_path / "runs"))
    config.data.max_length = 64
    config.lora.r = 4
    config.lora.alpha = 8
    config.train.max_steps = steps
    config.train.batch_size = 2
    config.train.learning_rate = 1e-3
    config.train.lr_scheduler = "constant"
    return config


def run_collecting(config, **kwargs):
    events = []
    run = TrainingRun(config, events.append, **kwargs)
    result = run.run()
    return run, result, events


def losses(events):
    return {e.step: e.loss for e in events if isinstance(e, StepMetrics)}


def test_short_run_learns_and_writes_its_folder(tmp_path):
    config = tiny_config(tmp_path, 8)
    config.data.eval_ratio = 0.125  # 4 of the 32 sample rows held out
    config.train.eval_steps = 4
    run, result, events = run_collecting(config)
    assert isinstance(result, Finished) and not result.cancelled, getattr(result, "details", "")
    by_step = losses(events)
    assert sorted(by_step) == list(range(1, 9))
    assert sum(by_step[s] for s in (7, 8)) < sum(by_step[s] for s in (1, 2))
    evals = [e for e in events if isinstance(e, EvalMetrics)]
    assert [e.step for e in evals] == [4, 8] and evals[1].eval_loss < evals[0].eval_loss
    step = next(e for e in events if isinstance(e, StepMetrics))
    assert step.tokens_per_second > 0 and step.peak_allocated_gb > 0 and step.total_steps == 8
    started = next(e for e in events if isinstance(e, RunStarted))
    assert 0 < started.trainable_params < started.total_params
    run_dir = Path(result.run_dir)
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (run_dir / "adapter" / "chat_template.jinja").is_file()
    assert RunConfig.from_yaml(run_dir / "config.yaml") == run.config
    logged = [
        event_from_dict(json.loads(line)) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [e for e in logged if e.kind == "step"] == [e for e in events if e.kind == "step"]
    assert "Loading demo" in (run_dir / "train.log").read_text()


def test_cancel_then_resume_gives_the_same_losses(tmp_path):
    _, full, full_events = run_collecting(tiny_config(tmp_path / "a", 6))
    assert isinstance(full, Finished)

    holder = {}

    def cancel_at_three(event):
        if isinstance(event, StepMetrics) and event.step == 3:
            holder["run"].cancel()

    config = tiny_config(tmp_path / "b", 6)
    holder["run"] = TrainingRun(config, lambda e: (events.append(e), cancel_at_three(e)))
    events: list = []
    stopped = holder["run"].run()
    assert isinstance(stopped, Finished) and stopped.cancelled and stopped.step == 3
    assert Path(stopped.last_checkpoint).name == "checkpoint-3"
    assert any(isinstance(e, CheckpointSaved) and e.step == 3 for e in events)

    _, resumed, resumed_events = run_collecting(config, resume_from=stopped.run_dir)
    assert isinstance(resumed, Finished) and resumed.step == 6 and resumed.run_dir == stopped.run_dir
    assert next(e for e in resumed_events if isinstance(e, RunStarted)).resumed_from_step == 3
    expected, got = losses(full_events), {**losses(events), **losses(resumed_events)}
    assert sorted(got) == list(range(1, 7))
    assert got == expected  # bit-exact: the resume promise


class RaiseOutOfMemory(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_fails_with_a_hint_and_keeps_checkpoints(tmp_path):
    config = tiny_config(tmp_path, 4)
    config.train.save_steps = 1
    _, result, events = run_collecting(config, extra_callbacks=[RaiseOutOfMemory()])
    assert isinstance(result, Failed)
    assert result.message == "The GPU ran out of memory during training."
    assert "lower the batch size (now 2" in result.hint and "max sequence length (now 64)" in result.hint
    assert Path(result.last_checkpoint).name == "checkpoint-1" and Path(result.last_checkpoint).is_dir()
    assert events[-1] == result
    assert "OutOfMemoryError" in (Path(result.run_dir) / "train.log").read_text()


def test_broken_dataset_stops_before_training(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n{"instruction": "q"}\n')
    config = tiny_config(tmp_path, 2)
    config.data.path = str(data)
    _, result, events = run_collecting(config)
    assert isinstance(result, Failed)
    assert "1 broken row(s)" in result.message
    assert f"{data}:2: field 'output': missing" in result.hint
    assert not any(isinstance(e, StepMetrics) for e in events)
