"""Crash-safe checkpoints: complete or absent, the newest complete one resumed, bit-exact after kill -9.

The unit tests drive `install_atomic_saving` with a stand-in Trainer that writes files the way the real
one does (into `_get_output_dir()/checkpoint-N`), so a crash halfway can be staged exactly.  The slow
tests run the real CLI on the embedded model in separate processes, as a user would, and kill one.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tunesmith.core.training.checkpoints import (
    MARKER,
    STAGING,
    CheckpointTimer,
    choose_resume,
    commit,
    install_atomic_saving,
    problem_with,
)


class StandInTrainer:
    """Writes a checkpoint file by file like transformers' Trainer; `crash_at` dies halfway through."""

    def __init__(self, output_dir: Path, crash_at: int | None = None):
        self.args = SimpleNamespace(output_dir=str(output_dir))
        self.state = SimpleNamespace(global_step=0)
        self.crash_at = crash_at
        self.saves = 0

    def _get_output_dir(self, trial=None):
        return self.args.output_dir

    def _save_checkpoint(self, model, trial):
        self.saves += 1
        folder = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(b"w" * 100)
        if self.state.global_step == self.crash_at:
            raise KeyboardInterrupt  # the process dies here: the optimizer state is never written
        (folder / "optimizer.pt").write_bytes(b"o" * 200)


def save_at(trainer: StandInTrainer, step: int) -> None:
    trainer.state.global_step = step
    trainer._save_checkpoint(None, None)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_checkpoint_bears_its_name_only_when_complete_and_two_are_kept(tmp_path):
    trainer = StandInTrainer(tmp_path, crash_at=4)
    install_atomic_saving(trainer)
    for step in (1, 2, 3):
        save_at(trainer, step)
    assert names(tmp_path) == ["checkpoint-2", "checkpoint-3"]
    assert json.loads((tmp_path / "checkpoint-3" / MARKER).read_text())["files"] == {
        "adapter_model.safetensors": 100,
        "optimizer.pt": 200,
    }
    with pytest.raises(KeyboardInterrupt):
        save_at(trainer, 4)
    assert names(tmp_path) == [STAGING, "checkpoint-2", "checkpoint-3"]  # no checkpoint-4 at all
    assert choose_resume(tmp_path) == (tmp_path / "checkpoint-3", [])
    assert trainer._get_output_dir() == str(tmp_path)  # the Trainer's own method is back

    restarted = StandInTrainer(tmp_path)  # the resumed process saves step 4 again
    install_atomic_saving(restarted)
    save_at(restarted, 4)
    assert names(tmp_path) == ["checkpoint-3", "checkpoint-4"]
    assert problem_with(tmp_path / "checkpoint-4") is None


def test_a_stop_right_after_a_timed_save_does_not_save_twice(tmp_path):
    trainer = StandInTrainer(tmp_path)
    install_atomic_saving(trainer)
    save_at(trainer, 5)
    save_at(trainer, 5)
    assert trainer.saves == 1 and names(tmp_path) == ["checkpoint-5"]


def complete_checkpoint(folder: Path, step: int) -> Path:
    staged = folder / STAGING / f"checkpoint-{step}"
    staged.mkdir(parents=True)
    (staged / "adapter_model.safetensors").write_bytes(b"w" * 100)
    (staged / "optimizer.pt").write_bytes(b"o" * 200)
    commit(staged, folder / staged.name, step)
    return folder / staged.name


def test_resume_falls_back_past_broken_checkpoints_and_says_why(tmp_path):
    complete_checkpoint(tmp_path, 10)
    truncated = complete_checkpoint(tmp_path, 20)
    with (truncated / "optimizer.pt").open("r+b") as handle:
        handle.truncate(50)
    unmarked = tmp_path / "checkpoint-30"  # an old-style half-written folder, without the marker
    unmarked.mkdir()
    (unmarked / "adapter_model.safetensors").write_bytes(b"w" * 100)
    chosen, skipped = choose_resume(tmp_path)
    assert chosen == tmp_path / "checkpoint-10"
    assert [str(s) for s in skipped] == [
        "checkpoint-30 is unusable (no completeness marker: it was still being written when the run "
        "stopped); skipping it",
        "checkpoint-20 is unusable (optimizer.pt is truncated or damaged (50 bytes, 200 expected)); "
        "skipping it",
    ]
    (tmp_path / "checkpoint-10" / "optimizer.pt").unlink()
    assert choose_resume(tmp_path)[0] is None
    assert problem_with(tmp_path / "checkpoint-10") == "optimizer.pt is missing"


def test_the_timer_asks_for_a_checkpoint_every_interval_of_training():
    now = [0.0]
    timer = CheckpointTimer(300, clock=lambda: now[0])
    control = SimpleNamespace(should_save=False)
    timer.on_train_begin(None, None, control)
    for at, expected in ((100, False), (299, False), (301, True)):
        now[0] = at
        control.should_save = False
        assert timer.on_step_end(None, None, control).should_save is expected, at
    timer.on_save(None, None, control)  # saved at 301: the next one is due at 601
    now[0], control.should_save = 600, False
    assert timer.on_step_end(None, None, control).should_save is False
    off = CheckpointTimer(0, clock=lambda: now[0])
    now[0] = 10**6
    assert off.on_step_end(None, None, control).should_save is False


# ----------------------------------------------------------------------------- real processes
RUN = ["--max-steps", "4", "--max-length", "48", "--lora-r", "4", "--batch-size", "1", "--seed", "5"]


def tunesmith_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("tunesmith")), *args]


def tunesmith(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(tunesmith_command(*args), capture_output=True, text=True, timeout=900)


def resumed_losses(run_dir: Path) -> tuple[int, dict[int, float]]:
    """(resumed-from step, losses by step) of the last process that trained in this run folder."""
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    last_start = max(i for i, e in enumerate(events) if e["event"] == "started")
    losses = {e["step"]: e["loss"] for e in events[last_start:] if e["event"] == "step"}
    return events[last_start]["resumed_from_step"], losses


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[int, float]]:
    """An uninterrupted run: checkpoints at steps 2 and 4, and its losses."""
    out = tmp_path_factory.mktemp("reference")
    result = tunesmith("train", *RUN, "--save-steps", "2", "--checkpoint-minutes", "0", "--output", str(out))
    assert result.returncode == 0, result.stderr
    run_dir = next(out.iterdir())
    start, losses = resumed_losses(run_dir)
    assert start == 0 and sorted(losses) == [1, 2, 3, 4]
    return run_dir, losses


def wait_for_a_checkpoint(out: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600
    while not list(out.glob(f"*/checkpoints/checkpoint-*/{MARKER}")):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_then_resume_continues_bit_exactly(tmp_path, reference):
    _, expected = reference
    out = tmp_path / "runs"
    # A checkpoint every 0.06 s of training, i.e. after every step: the time-based path, end to end.
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(
            tunesmith_command("train", *RUN, "--checkpoint-minutes", "0.001", "--output", str(out)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_a_checkpoint(out, process)
            assert process.poll() is None, "the run finished before it could be killed"
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    run_dir = next(out.iterdir())
    assert not (run_dir / "adapter").exists()  # it really died mid-run

    result = tunesmith("train", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    start, losses = resumed_losses(run_dir)
    assert 1 <= start < 4
    assert f"Resuming from checkpoint-{start} (step {start})" in result.stdout
    assert sorted(losses) == list(range(start + 1, 5))
    assert losses == {step: expected[step] for step in losses}  # exactly, not approximately


@pytest.mark.slow
def test_resume_passes_over_a_truncated_checkpoint_and_says_so(tmp_path, reference):
    source, expected = reference
    run_dir = tmp_path / source.name
    shutil.copytree(source, run_dir)
    weights = run_dir / "checkpoints" / "checkpoint-4" / "adapter_model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)

    result = tunesmith("train", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "warning: checkpoint-4 is unusable (adapter_model.safetensors is truncated" in result.stdout
    assert "Resuming from checkpoint-2 (step 2)" in result.stdout
    start, losses = resumed_losses(run_dir)
    assert start == 2 and losses == {3: expected[3], 4: expected[4]}
    assert problem_with(run_dir / "checkpoints" / "checkpoint-4") is None  # written again, whole


def test_resume_refuses_an_incomplete_checkpoint_before_loading(tmp_path, capsys):
    from tunesmith.core.cli import main
    from tunesmith.core.config import RunConfig

    run_dir = tmp_path / "run"
    half = run_dir / "checkpoints" / "checkpoint-4"
    half.mkdir(parents=True)
    (half / "adapter_model.safetensors").write_bytes(b"w" * 10)
    RunConfig(output_dir=str(tmp_path)).to_yaml(run_dir / "config.yaml")
    assert main(["train", "--resume", str(half)]) == 1
    err = capsys.readouterr().err
    assert "checkpoint-4 cannot be resumed from: no completeness marker" in err
    assert main(["train", "--resume", str(run_dir)]) == 1
    assert f"{run_dir}: no complete checkpoint to resume from (1 incomplete)" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "elsewhere")]) == 2
    assert "not a Tunesmith run folder (it has no config.yaml)" in capsys.readouterr().err
