"""LoRA dropout trains with Tunesmith's kernels: their checkpoint recompute replays the random state in
layers that hold a dropout, so forward and backward see the same masks (tests/kernels/test_patch_dropout.py
checks the gradients against stock transformers + peft, per family).  The engine keeps the kernels on
for such a run, and the VRAM estimate counts them."""

from tunesmith.core.config import RunConfig
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.vram import kernels_will_run

GPU = HardwareInfo("cuda", "RTX 3060", (8, 6), 12.0, 11.5, 32.0, 8, "2.9", "12.8", "3.5", "0.49.0", "3.11")


def test_dropout_keeps_the_kernels():
    config = RunConfig()
    config.lora.dropout = 0.1
    assert kernels_will_run(config, GPU, "llama")
