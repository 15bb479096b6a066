"""A fresh start is clean (issue 12.4): no settings, empty caches, and once every background probe has
finished, no label, banner or status line of the window holds an error.

The app starts in a child process (first_start_probe.py) so that it is really the first import of
torch and transformers, as for a user: the probes (hardware, welcome, dataset preview, memory
estimate) then import them from several threads at once, which once left "cannot import name
'AutoModelForCausalLM' from 'transformers'" in the Memory row, and converted the demo model twice at
once ("Cannot copy out of meta tensor").  Imports are slowed a little in the child (a few ms per
transformers module) so that such a race shows up every time rather than now and then.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("first_start_probe.py")
ERROR_WORDS = ("error", "cannot", "could not", "failed", "traceback", "not available", "unexpected")


def cold_environment(tmp_path: Path) -> dict[str, str]:
    """The child's environment: every folder the app reads or writes is new and empty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "TUNESMITH_", "HF_"))}
    home = tmp_path / "home"
    folders = {
        "HOME": home,
        "TUNESMITH_HOME": home / "Tunesmith",
        "TUNESMITH_CACHE": tmp_path / "cache" / "tunesmith",
        "XDG_CONFIG_HOME": tmp_path / "xdg" / "config",
        "XDG_DATA_HOME": tmp_path / "xdg" / "data",
        "XDG_CACHE_HOME": tmp_path / "xdg" / "cache",
        "HF_HOME": tmp_path / "xdg" / "cache" / "huggingface",
    }
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    env.update({name: str(path) for name, path in folders.items()})
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        TUNESMITH_SLOW_IMPORTS="1",
    )
    env.pop("PYTHONPATH", None)
    return env


def test_a_cold_start_shows_no_error_anywhere(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path / "settings")],
        cwd=cwd,
        env=cold_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["finished"] == ["capabilities", "dataset", "hardware", "vram"], report
    assert report["pending_jobs"] == 0, report
    errors = [text for text in report["texts"] if any(word in text.lower() for word in ERROR_WORDS)]
    assert not errors, f"error text in a fresh window: {errors}"
    assert any("Memory" in text for text in report["texts"])
    assert any("GiB" in text and "needed" in text for text in report["texts"]), "the estimate is shown"
    assert not list(cwd.iterdir()), "nothing is written where the app was started from"
