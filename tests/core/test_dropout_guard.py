"""LoRA dropout and Tunesmith's kernels are not combined until the kernels' recompute replays the
dropout masks: the engine trains that run with stock transformers and says so, and the VRAM estimate
counts the stock run."""

from tunesmith.core.config import LoraSettings, RunConfig
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.models.loading import kernels_refusal
from tunesmith.core.vram import kernels_will_run

GPU = HardwareInfo("cuda", "RTX 3060", (8, 6), 12.0, 11.5, 32.0, 8, "2.9", "12.8", "3.5", "0.49.0", "3.11")


def test_dropout_turns_the_kernels_off_with_a_notice():
    assert kernels_refusal(LoraSettings(dropout=0.0)) is None
    notice = kernels_refusal(LoraSettings(dropout=0.05))
    assert notice and "dropout" in notice and "stock transformers" in notice
    assert kernels_refusal(LoraSettings(enabled=False, dropout=0.05)) is None  # no adapters, no dropout


def test_vram_estimate_counts_the_stock_run_with_dropout():
    config = RunConfig()
    assert kernels_will_run(config, GPU, "llama")
    config.lora.dropout = 0.1
    assert not kernels_will_run(config, GPU, "llama")
