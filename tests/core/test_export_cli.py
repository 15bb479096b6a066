"""`tunesmith export` and `tunesmith chat` as the main CLI registers them: exit codes and messages."""

from __future__ import annotations

import argparse

import pytest

from tunesmith.core.export.cli_commands import add_chat_parser, add_export_parser


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tunesmith")
    sub = parser.add_subparsers(dest="command", required=True)
    add_export_parser(sub)
    add_chat_parser(sub)
    args = parser.parse_args(argv)
    return args.handler(args)


def test_export_missing_run_dir_exits_1_with_a_message(tmp_path, capsys):
    assert _run(["export", str(tmp_path / "nope"), "--format", "gguf", "--quant", "q8_0"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_export_rejects_unknown_quant_as_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        _run(["export", str(tmp_path), "--format", "gguf", "--quant", "q2_k"])
    assert exc.value.code == 2


def test_chat_missing_model(tmp_path, capsys):
    assert _run(["chat", str(tmp_path / "none.gguf"), "--prompt", "hi"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_chat_one_prompt_prints_the_answer(capsys):
    pytest.importorskip("llama_cpp")
    from tunesmith.core.models.sources import embedded_gguf_path

    code = _run(
        [
            "chat",
            str(embedded_gguf_path()),
            "--prompt",
            "What is 2+2?",
            "--temperature",
            "0",
            "--max-tokens",
            "48",
            "--system",
            "You are a calculator.",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "2" in out and out.endswith("\n")  # the model's own words, printed, then exit
