"""The CLI contract: commands, exit codes and one-line messages (no tracebacks)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.core.cli import main


def tunesmith(*args, cwd=None):
    """Run the real console entry point in a fresh process, as a user's script would."""
    exe = Path(sys.executable).with_name("tunesmith")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(), timeout=600
    )


def test_help_lists_every_command():
    result = tunesmith("--help")
    assert result.returncode == 0
    for command in ("info", "data", "train", "demo", "export", "chat"):
        assert command in result.stdout


def test_info_reports_this_machine(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    import torch

    assert report["torch_version"] == torch.__version__
    assert report["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_data_check_clean_file_exits_zero_with_token_stats(capsys):
    from tunesmith.core.data import sample_dataset_path

    assert main(["data", "check", str(sample_dataset_path()), "--max-length", "50"]) == 0
    out = capsys.readouterr().out
    assert "format messages; 32 of 32 rows usable" in out
    assert "tokens per row: min 46" in out and "longer than max_length 50" in out


def test_data_check_broken_file_exits_one_with_file_line_messages(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"instruction": "q", "output": "a"}\n{"instruction": "q"}\n{oops\n')
    result = tunesmith("data", "check", str(path), "--no-tokens")
    assert result.returncode == 1
    assert "1 of 3 rows usable" in result.stdout
    assert f"{path}:2: field 'output': missing" in result.stderr
    assert f"{path}:3: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_errors_are_one_clear_line_and_debug_shows_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "nope.jsonl")
    assert main(["data", "check", missing]) == 1
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such file"
    assert main(["--debug", "data", "check", missing]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_train_rejects_bad_settings_before_loading_anything(tmp_path, capsys):
    assert main(["train", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "error: --batch-size must be 1 or more\n"
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  grad_accum: 0\n")
    assert main(["train", str(config)]) == 2
    assert (
        f"error: train.grad_accum in {config} (or --grad-accum) must be 1 or more" in capsys.readouterr().err
    )


def test_train_with_a_broken_dataset_fails_with_its_lines(tmp_path, capsys):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine"}\n{"text": 5}\n')
    code = main(["train", "--data", str(path), "--max-steps", "1", "--output", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}:2: field 'text': must be text, got int" in err


@pytest.mark.slow
def test_train_from_flags_then_from_the_saved_config(tmp_path):
    args = [
        "--max-steps",
        "2",
        "--max-length",
        "48",
        "--lora-r",
        "4",
        "--batch-size",
        "1",
        "--output",
        str(tmp_path),
    ]
    first = tunesmith("train", *args)
    assert first.returncode == 0, first.stderr
    assert "step 2/2" in first.stdout
    run_dir = next(tmp_path.iterdir())
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if s["event"] == "step"] == [1, 2]
    again = tunesmith("train", str(run_dir / "config.yaml"), "--quiet")
    assert again.returncode == 0, again.stderr
    assert len(list(tmp_path.iterdir())) == 2  # a new folder: runs are never reused


def test_grpo_flags_reach_the_run_config():
    import argparse

    from tunesmith.core.cli_commands import add_train, config_from_args

    parser = argparse.ArgumentParser()
    add_train(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["train", "--method", "grpo", "--max-prompt-length", "96", "--max-completion-length", "48",
         "--no-fast-rollout", "--reward", "length:20"]
    )  # fmt: skip
    config = config_from_args(args)
    assert (config.train.max_prompt_length, config.train.max_completion_length) == (96, 48)
    assert config.train.fast_rollout is False and config.train.rewards == ["length:20"]
    default = config_from_args(parser.parse_args(["train", "--method", "grpo", "--reward", "length:20"]))
    assert default.train.fast_rollout is True


def test_data_problems_name_their_line_and_the_flag_that_skips_them(tmp_path, capsys):
    jsonl = tmp_path / "latin1.jsonl"
    jsonl.write_bytes(b'{"text": "one"}\n{"text": "two"}\n{"text": "caf\xe9"}\n{"text": "four"}\n')
    assert main(["train", "--data", str(jsonl), "--output", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert (
        "1 broken row(s); fix them, or allow skipping broken rows (--skip-invalid) to train on the 3" in err
    )
    assert f"{jsonl}:3: not UTF-8 text (byte 0xE9 at column 14;" in err
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made
    csv = tmp_path / "d.csv"
    csv.write_text("instruction,output\n" + "".join(f"q{i},a{i}\n" for i in range(2, 6)) + "q6,a6,extra\n")
    assert main(["data", "check", str(csv), "--no-tokens"]) == 1
    captured = capsys.readouterr()
    assert "4 of 5 rows usable" in captured.out
    assert f"{csv}:6: 3 fields, but the header (line 1) has 2" in captured.err


def test_grpo_without_a_reward_is_refused_before_loading_in_flags(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Say hi"}\n{"prompt": "Say bye"}\n')
    result = tunesmith(
        "train", "--method", "grpo", "--data", str(prompts), "--output", str(tmp_path / "runs")
    )
    assert result.returncode == 1
    assert (
        "with --reward (exact_match, format:REGEX, length:WORDS), your own with --reward-file"
        in result.stderr
    )
    assert "train.reward" not in result.stderr and "Traceback" not in result.stderr
    assert "Loading" not in result.stdout and not (tmp_path / "runs").exists()


def test_model_failures_are_worded_without_a_traceback(tmp_path, demo_model_dir):
    missing = tunesmith("train", "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "runs"))
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"error: {tmp_path / 'no-model'}: no such file or folder." in missing.stderr
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (damaged / name).write_bytes((demo_model_dir / name).read_bytes())
    with (demo_model_dir / "model.safetensors").open("rb") as whole:
        (damaged / "model.safetensors").write_bytes(whole.read(1_000_000))  # a download cut short
    result = tunesmith("train", "--model", str(damaged), "--output", str(tmp_path / "runs"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "model.safetensors: this model's weights file is incomplete or damaged: download it again" in (
        result.stderr
    )


def test_train_warns_about_unusual_values_by_their_flag(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl"  # the run then stops at the data check, before any model loads
    assert main(["train", "--lr", "0.5", "--lora-r", "256", "--data", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "warning: --lr is 0.5, far from the usual 1e-06 to 0.001; training goes ahead as asked." in err
    assert "warning: --lora-r is 256, far from the usual 2 to 128" in err


def test_the_printer_says_how_a_run_ended(capsys):
    from tunesmith.core.cli_commands import EventPrinter
    from tunesmith.core.events import Finished, LogLine

    printer = EventPrinter()
    printer(LogLine("warning", "the loss climbed"))
    printer(
        Finished(
            run_dir="runs/r", adapter_dir="runs/r/adapter", step=6, final_loss=15.9, problem="It diverged."
        )
    )
    printer(Finished(run_dir="runs/s", adapter_dir="runs/s/adapter", step=3, final_loss=2.0, cancelled=True))
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "warning: the loss climbed",
        "Run ended at step 6, final loss 15.9000.",
        "Run folder: runs/r",
        "Run stopped at step 3, final loss 2.0000.",
        "Run folder: runs/s",
        "Resume with: tunesmith train --resume runs/s",
    ]
    assert err == "warning: It diverged.\n"
    EventPrinter(quiet=True)(LogLine("info", "not shown"))
    assert capsys.readouterr().out == ""
