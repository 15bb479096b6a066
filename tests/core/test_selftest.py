"""`tunesmith --self-test` on the CPU: every stage for real (embedded model, 2 TRL steps, Q8_0 GGUF, chat).

One real run (~1-2 min on 2 cores) shared by the assertions, plus a failing stage reported by name.
"""

from pathlib import Path

import pytest

from tunesmith.core import selftest

pytestmark = pytest.mark.slow


def test_self_test_passes_and_reports_every_stage(tmp_path):
    lines: list[str] = []
    status = selftest.run_self_test(tmp_path, log=lines.append)
    report = "\n".join(lines)
    assert status == 0, report
    for stage in ("machine", "load model", "train", "export GGUF", "chat"):
        assert any(line.startswith(f"  ok      {stage}") for line in lines), report
    assert "step 2/2: loss" in report and "Self-test passed: 5 stages" in report
    ggufs = list(tmp_path.glob("runs/self-test-*/exports/*q8_0.gguf"))
    assert len(ggufs) == 1 and ggufs[0].stat().st_size > 10_000_000


def test_a_failing_stage_is_named_and_the_status_is_1(tmp_path, monkeypatch):
    def broken(ctx):
        raise selftest.StageFailed("the embedded model is missing")

    monkeypatch.setattr(selftest, "_stage_model", broken)
    lines: list[str] = []
    assert selftest.run_self_test(tmp_path, log=lines.append) == 1
    assert "  FAILED  load model: the embedded model is missing" in lines
    assert lines[-1].startswith("Self-test FAILED at stage 'load model'")
    assert not any(line.startswith("  ok      train") for line in lines)


def test_without_a_workdir_nothing_is_left_behind(tmp_path, monkeypatch):
    seen: dict[str, Path] = {}

    def stop_early(ctx):
        seen["workdir"] = ctx["workdir"]
        raise RuntimeError("stop here")

    monkeypatch.setattr(selftest, "_stage_model", stop_early)
    lines: list[str] = []
    assert selftest.run_self_test(log=lines.append) == 1
    assert "  FAILED  load model: RuntimeError: stop here" in lines
    assert not seen["workdir"].exists()
