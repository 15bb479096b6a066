"""What step 1 does that later steps do not, in the words the app and the CLI show while it runs: the
Triton cache folder as Triton itself finds it (cold or warm), the pinned host budget, GRPO's sampler, and
nothing on the CPU, where step 1 is like the rest."""

from __future__ import annotations

from tunesmith.core.training.first_step import first_step_words, triton_cache_dir


def test_the_cpu_says_nothing():
    assert first_step_words("cpu", kernels_patched=False) == ""
    assert first_step_words("cpu", kernels_patched=True, pinned_limit_bytes=8 << 30) == ""


def test_a_cold_cache_is_compiled_and_a_warm_one_read(tmp_path):
    cache = tmp_path / "triton"
    cold = first_step_words("cuda:0", True, cache=cache)
    assert "compiles Tunesmith's GPU kernels" in cold and str(cache) in cold
    (cache / "abc").mkdir(parents=True)
    warm = first_step_words("cuda:0", True, cache=cache)
    assert warm.startswith("Step 1 takes longer than the rest: it loads") and str(cache) in warm
    assert "compiles Tunesmith" not in warm


def test_pinned_memory_and_grpo_are_named(tmp_path):
    words = first_step_words(
        "cuda", True, pinned_limit_bytes=int(12.5 * 2**30), method="grpo", cache=tmp_path
    )
    assert "page-locks host memory" in words and "at most 12.5 GiB" in words
    assert "fast sampler" in words and words.count(" and ") >= 1 and words.endswith(".")
    stock = first_step_words("cuda", kernels_patched=False)
    assert "sets up CUDA" in stock and "Tunesmith" not in stock and "page-locks" not in stock


def test_the_cache_folder_follows_tritons_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert triton_cache_dir() == tmp_path / "elsewhere"
    assert str(tmp_path / "elsewhere") in first_step_words("cuda:0", True)
    monkeypatch.delenv("TRITON_CACHE_DIR")
    assert triton_cache_dir().parts[-2:] == (".triton", "cache")
