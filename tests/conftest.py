"""Settings shared by the whole suite: no network, one model cache, real embedded model.

The embedded demo model is converted from its GGUF once into TUNESMITH_CACHE; the folder survives
between test sessions on the same machine (its name changes when the GGUF changes), so only the first
run pays the ~15 s conversion.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TUNESMITH_CACHE", str(Path(tempfile.gettempdir()) / "tunesmith-test-cache"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Triton reads TRITON_INTERPRET once, when it is first imported, and trl/bitsandbytes import it early:
# set it here, before any test module loads, so kernel tests run on the CPU interpreter. The GPU
# machine passes TRITON_INTERPRET=0 explicitly (bench/run_gpu.sh).
os.environ.setdefault("TRITON_INTERPRET", "1")
# One torch (OpenMP) thread for the CPU suite, in this process and every child it starts (CLI, app,
# self-test, launcher workers): the suite runs a GUI thread, QThreads, llama.cpp children and other CPU
# jobs beside torch, and on a 2-core machine two OpenMP threads then spin-wait against them. Measured on
# the 2-core machine with one other CPU job running: test_short_run_learns_and_writes_its_folder 265 s
# with 2 threads, 17 s with 1; test_dpo_margin_between_chosen_and_rejected_grows 100 s vs 13 s. (Several
# modules already set one thread around their training for the same reason.) The GPU machine's kernel
# tests (TRITON_INTERPRET=0) keep torch's default.
if os.environ["TRITON_INTERPRET"] != "0":
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402

import pytest  # noqa: E402

# `python -m pytest` from the repository root puts the root on sys.path, where our `kernels/` folder
# would answer to the bare name `kernels` (a PyPI package that transformers and bitsandbytes probe for).
# Tests import everything as tunesmith.*, so the root is never needed on the path.
_ROOT = str(Path(__file__).resolve().parents[1])
sys.path[:] = [p for p in sys.path if p not in ("", ".", _ROOT)]


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The embedded SmolLM2 as a dense safetensors folder (real weights, no download)."""
    from tunesmith.core.models.sources import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def demo_tokenizer(demo_model_dir):
    from tunesmith.core.models.sources import load_tokenizer

    return load_tokenizer("demo")


@pytest.fixture(scope="session")
def mascot_adapter(tmp_path_factory, demo_model_dir) -> Path:
    """A LoRA adapter of the embedded model that learned one made-up fact (the mascot is an owl called
    Quaver): tests/e2e/test_gguf_roundtrip.py's _train_adapter, run once for the session (~15 s on 2 cores)
    instead of once in that module and again in tests/desktop/test_chat_adapter.py. Read it only: each
    module copies it into a run folder of its own, where its exports are written."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gguf_roundtrip_trainer", Path(__file__).parent / "e2e" / "test_gguf_roundtrip.py"
    )
    assert spec is not None and spec.loader is not None
    roundtrip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roundtrip)  # skips where llama-cpp-python is missing, as both modules do
    adapter = tmp_path_factory.mktemp("mascot") / "adapter"
    adapter.mkdir()
    final_loss = roundtrip._train_adapter(demo_model_dir, adapter)
    assert final_loss < 0.5, f"the tiny fine-tune did not learn (loss {final_loss:.2f})"
    return adapter
