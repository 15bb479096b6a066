"""Threads that start engine work together never import transformers for the first time together.

In a fresh interpreter, five threads released at once each ask for a different heavy name (an auto
model class, the tokenizer class, PreTrainedModel, trl's SFTTrainer, peft's get_peft_model), each
first calling `import_heavy()` as the app's background jobs do.  Without that call this fails on
transformers 5 with "cannot import name 'AutoModel' from 'transformers'" (a concurrent circular import
hands one thread a half-initialised module); imports are slowed a few ms per module to make the
overlap certain.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

RACE = r"""
import importlib.abc, json, sys, threading, time

class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.startswith(("transformers.", "trl.", "peft.")):
            time.sleep(0.005)
        return None

sys.meta_path.insert(0, Slow())
from tunesmith.core.heavy_imports import heavy_ready, import_heavy

jobs = {
    "auto_model": lambda: __import__("transformers").AutoModelForCausalLM,
    "tokenizer": lambda: __import__("transformers").AutoTokenizer,
    "pretrained": lambda: __import__("transformers").PreTrainedModel,
    "trl": lambda: __import__("trl").SFTTrainer,
    "peft": lambda: __import__("peft").get_peft_model,
}
barrier = threading.Barrier(len(jobs))
errors = []

def run(name, job):
    barrier.wait()
    try:
        import_heavy()
        job()
    except BaseException as exc:
        errors.append(f"{name}: {type(exc).__name__}: {exc}")

threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
before = heavy_ready()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"errors": errors, "ready_before": before, "ready_after": heavy_ready()}))
"""


def test_concurrent_first_imports_wait_for_one_import(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", RACE], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"errors": [], "ready_before": False, "ready_after": True}
