"""The longest-context plan against the GPU measurements (BENCHMARKS.md, issue 16's table), and
`tunesmith plan` on the demo and on a Llama-3.1-8B-shaped config.json."""

import json

import pytest

from tunesmith.core.cli import main
from tunesmith.core.context_plan import (
    GIB,
    fixed_gpu_parts,
    kernel_families,
    longest_context,
    memory_at,
    pinned_bytes,
)
from tunesmith.core.vram import ModelShape, model_shape

LLAMA_8B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}
SHAPE = ModelShape(4096, 14336, 32, 128256, 32, 8, 128, False, "llama")
RAM = 125  # GiB: the H100 host of the measurements (its stash cap, a quarter of RAM, applies)
UNLIMITED = 10_000  # GiB: "before the budget"

# 8B QLoRA, batch 1: (tokens per step, host budget GiB, GPU cap GiB, measured GPU peak allocated GiB,
# measured pinned host GiB, measured process host GiB), None where not recorded or where the kernels of
# the time differ from today's (a GPU peak measured before the MLP ran over sequence tiles).
MEASURED = [
    (4096, None, None, 5.80, None, None),  # issue 16 (session 9), 2x2048
    (8192, None, None, 6.57, None, None),  # issue 16 (session 9), 1x8192
    (16384, UNLIMITED, None, None, None, 20.6),  # issue 16: 11 GiB cap, 16,384 fits (host 20.6 GiB)
    (65536, UNLIMITED, None, None, 48.0, None),  # issue 13/16: 65,536 at 24 GiB, 48 GiB pinned
    (65536, 32, None, None, 31.8, 33.3),  # BENCHMARKS.md host budget table
    (65536, 64, None, None, 48.1, 49.7),
    # issue 16, this kernel version (H100, TUNESMITH_HOST_RAM_GIB emulating the desktop's RAM):
    (163840, 51.2, 24, 19.32, None, 42.49),  # 24 GiB cap, 64 GiB RAM: fits
    (65536, 25.6, 12, 11.08, None, 18.53),  # 12 GiB cap, 32 GiB RAM: fits
    # before the attention's backward ran over KV-head groups (its GPU peak then was 7.1 GiB):
    (16384, 12.0, 8, None, None, 6.61),  # 8 GiB cap, 16 GiB RAM: fits
]


def close(predicted: float, measured: float) -> bool:
    return abs(predicted - measured) <= 0.15 * measured


@pytest.mark.parametrize(("tokens", "budget", "cap", "gpu", "pinned", "host"), MEASURED)
def test_memory_predictions_match_the_measurements_within_15_percent(tokens, budget, cap, gpu, pinned, host):
    # the measurements are the allocator's peaks: the CUDA context is not in them
    fixed = sum(fixed_gpu_parts(SHAPE).values()) - fixed_gpu_parts(SHAPE)["CUDA context"]
    budget_bytes = (budget if budget is not None else RAM * 0.8) * GIB
    # the emulated RAM (host_budget's inverse): its stash cap is a quarter of it
    ram = RAM if cap is None else budget / 0.8 if budget >= 16 else budget + 4
    free = None if cap is None else cap * GIB - fixed * GIB
    predicted = memory_at(SHAPE, tokens, budget_bytes, ram * GIB / 4, fixed, True, free)
    for measured, value in (
        (gpu, predicted.gpu_gib),
        (pinned, predicted.host_pinned_gib),
        (host, predicted.host_gib),
    ):
        if measured is not None:
            assert close(value, measured), (tokens, budget, value, measured)


@pytest.mark.parametrize(
    ("cap", "ram", "fits", "fails"),
    [  # issue 16's three cards, measured on an H100 with this kernel version (BENCHMARKS.md)
        (24, 64, 163840, None),
        (12, 32, 65536, 73728),  # 73,728 ran out of the 12 GiB cap in the backward
        (8, 16, 16384, None),
    ],
)
def test_the_longest_context_agrees_with_what_fitted_and_what_did_not(cap, ram, fits, fails):
    """The plan for a capped allocator (as measured) is within 15% of a length that fitted, never above one
    that did not."""
    plan = longest_context(SHAPE, "sft", cap, ram, cuda_context=False)
    if fits is not None:
        assert plan.tokens >= 0.85 * fits
    if fails is not None:
        assert plan.tokens < fails


def test_the_mlp_tiles_are_the_kernels_own():
    from tunesmith.core.context_plan import (
        ATTENTION_BUFFER_BYTES,
        MLP_TILE_BYTES,
        STASH_GPU_SHARE,
        mlp_tile_rows,
    )
    from tunesmith.kernels.memory import host_budget
    from tunesmith.kernels.ops import attention, lora_mlp

    assert MLP_TILE_BYTES == lora_mlp.MLP_TILE_BYTES
    assert STASH_GPU_SHARE == host_budget.STASH_GPU_SHARE
    assert ATTENTION_BUFFER_BYTES == attention.BACKWARD_BUFFER_BYTES
    for tokens in (1, 2048, 8192, 9363, 65536, 163840, 1 << 20):
        for inter in (1536, 14336, 28672):
            assert mlp_tile_rows(tokens, inter) == lora_mlp.tile_rows(tokens, inter, 2)
    assert mlp_tile_rows(8192, 14336) == 8192  # 1 x 8192 of an 8B model: one piece, as before
    assert mlp_tile_rows(163840, 14336) == 9344  # 160K: tiles of 9,344 rows (511 MiB of [gate | up])


def test_the_host_arithmetic_is_the_kernels_own():
    from tunesmith.kernels.memory.host_budget import pinned_bytes as kernels_pinned
    from tunesmith.kernels.memory.host_budget import plan_host_memory
    from tunesmith.kernels.patch.families import FAMILIES

    assert kernel_families() == set(FAMILIES)  # read from the source, without importing torch

    sizes = [
        *range(0, 1 << 16, 257),
        *range((2 << 20) - 5, (2 << 20) + 5),
        *range(1, 1 << 36, (1 << 36) // 997),
    ]
    assert [pinned_bytes(n) for n in sizes] == [kernels_pinned(n) for n in sizes]
    # exact to 2 MiB from 2 MiB up: a 1.25 GiB layer input (163,840 x 4096 bf16) pins 1.25 GiB, not 2
    assert pinned_bytes(163840 * 4096 * 2) == 1280 << 20 and pinned_bytes((2 << 20) + 1) == 4 << 20
    assert pinned_bytes(3000) == 4096 and pinned_bytes(1) == 4096 and pinned_bytes(0) == 0
    table = SHAPE.vocab * SHAPE.hidden * 2
    for tokens, budget in ((65536, 32), (98304, 32), (262144, 64)):
        _fits, plan = plan_host_memory(32, 4096, tokens, budget * GIB, None, 2, table)
        assert memory_at(SHAPE, tokens, budget * GIB, 0, 5.0).host_layers == plan.host_inputs


def test_methods_with_two_rows_a_step_and_cards_too_small_are_said_in_words():
    sft = longest_context(SHAPE, "sft", 24, 64)
    dpo = longest_context(SHAPE, "dpo", 24, 64)
    assert 0 < dpo.tokens <= sft.tokens // 2 + 1024
    tiny = longest_context(SHAPE, "sft", 4, 16)
    assert tiny.tokens == 0 and "Does not fit on this card" in tiny.words()
    with pytest.raises(ValueError, match="GRPO"):
        longest_context(SHAPE, "grpo", 24, 64)


def test_plan_command_for_an_8b_config_and_the_demo(tmp_path, capsys):
    folder = tmp_path / "llama-3.1-8b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_8B), encoding="utf-8")
    longest = {}
    for vram, ram in ((8, 16), (12, 32), (24, 64)):
        assert main(["plan", "--model", str(folder), "--vram-gib", str(vram), "--ram-gib", str(ram)]) == 0
        out = capsys.readouterr().out
        assert "32 layers, hidden 4096, vocabulary 128,256" in out
        line = next(x for x in out.splitlines() if x.startswith("Longest that fits on this card: "))
        longest[vram] = int(line.split(": ")[1].split(" tokens")[0].replace(",", ""))
        assert longest[vram] % 1024 == 0
    assert 0 < longest[8] < longest[12] < longest[24]
    assert longest[24] == longest_context(SHAPE, "sft", 24, 64).tokens
    assert main(["plan", "--model", "demo", "--vram-gib", "8", "--ram-gib", "16", "--method", "dpo"]) == 0
    out = capsys.readouterr().out
    assert "demo: 30 layers, hidden 576, vocabulary 49,152" in out and "DPO, batch size 1" in out
    (folder / "config.json").write_text(json.dumps({**LLAMA_8B, "model_type": "phi3"}), encoding="utf-8")
    assert main(["plan", "--model", str(folder), "--vram-gib", "24", "--ram-gib", "64"]) == 0
    out = capsys.readouterr().out
    assert "No plan for this model: Tunesmith's kernels do not cover phi3 models" in out
    assert "Longest that fits" not in out
    assert main(["plan", "--model", str(tmp_path / "missing"), "--vram-gib", "8"]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_plan_on_a_machine_without_a_gpu_says_so(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["plan", "--model", "demo"]) == 0
    out = capsys.readouterr().out
    assert "no NVIDIA GPU" in out and "Longest that fits" not in out


def test_the_demo_gguf_header_gives_the_shape_of_its_config_json(demo_model_dir):
    from tunesmith.core.models.model_shape import shape_of
    from tunesmith.core.vram import model_shape

    config = json.loads((demo_model_dir / "config.json").read_text(encoding="utf-8"))
    assert shape_of("demo") == model_shape(config)
    assert shape_of(str(demo_model_dir)) == model_shape(config)


def test_the_fit_estimate_agrees_with_the_longest_that_fits():
    """The model panel's estimate (core.vram) counts the kernels as the plan does: the length the preset
    offers fits, and a little longer does not."""
    from tunesmith.core.config import RunConfig
    from tunesmith.core.hardware import HardwareInfo
    from tunesmith.core.vram import estimate_for_shape

    card = HardwareInfo(
        "cuda", "RTX 4090", (8, 9), 24.0, 23.5, 64.0, 16, "2.11", "13.0", "3.6", "0.45", "3.11"
    )
    config = RunConfig()
    config.train.batch_size = 1
    plan = longest_context(SHAPE, "sft", card.vram_free_gb, card.ram_total_gb, lora_r=config.lora.r)
    assert plan.limit == "GPU memory" and 163840 <= plan.tokens < 262144
    config.data.max_length = plan.tokens
    assert estimate_for_shape(SHAPE, "4bit", config, card).fits
    config.data.max_length = plan.tokens + 2048
    assert not estimate_for_shape(SHAPE, "4bit", config, card).fits


def test_the_offer_stops_at_the_length_the_model_was_trained_for(capsys):
    """The demo model was trained on 8,192-token contexts (its GGUF's context_length): a 12 GiB card holds
    far longer rows, but the length offered is 8,192 and the words say why; a config without
    max_position_embeddings is offered what fits."""
    from tunesmith.core.models.model_shape import shape_of

    demo = shape_of("demo")
    assert demo.trained_context == 8192
    plan = longest_context(demo, "sft", 12, 32)
    assert plan.tokens > 8192 and plan.offered == 8192
    assert "trained on up to 8,192 tokens" in plan.words()
    assert longest_context(SHAPE, "sft", 24, 64).offered == longest_context(SHAPE, "sft", 24, 64).tokens
    long_8b = model_shape({**LLAMA_8B, "max_position_embeddings": 131072})
    assert long_8b.trained_context == 131072
    # a 24 GiB card holds more than Llama-3.1-8B's 131,072 positions: the offer stops there
    assert longest_context(SHAPE, "sft", 24, 64).tokens > 131072
    assert longest_context(long_8b, "sft", 24, 64).offered == 131072
    assert longest_context(long_8b, "sft", 12, 32).offered == longest_context(SHAPE, "sft", 12, 32).tokens
