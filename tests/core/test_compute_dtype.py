"""The compute dtype is chosen in one place (core.models.precision.compute_dtype_for) and every reader
follows it: model loading, the trainer's bf16/fp16 flags and the VRAM estimate.  GPUs older than Ampere
(compute capability 8.0) have no bf16: they compute in fp16 with loss scaling."""

from types import SimpleNamespace

import pytest
import torch

from tunesmith.core.config import RunConfig
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.models.precision import ComputeDtype, choose_precision, compute_dtype_for

CARDS = {
    (7, 0): "Tesla V100",
    (7, 5): "Tesla T4",
    (8, 0): "A100",
    (8, 9): "RTX 4090",
    (9, 0): "H100",
}


def gpu(cc, bnb="0.49.0"):
    return HardwareInfo(
        "cuda", CARDS.get(cc, "GPU"), cc, 16.0, 15.0, 32.0, 8, "2.9", "12.8", "3.5", bnb, "3.11"
    )


CPU = HardwareInfo("cpu", None, None, 0.0, 0.0, 32.0, 8, "2.9", None, "3.5", None, "3.11")


@pytest.mark.parametrize(
    "cc,compute", [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")]
)
def test_automatic_picks_4bit_and_the_compute_dtype_the_card_has(cc, compute):
    hw = gpu(cc)
    choice = choose_precision("auto", hw)
    assert choice.precision == "4bit"
    chosen = compute_dtype_for(hw, choice.precision)
    assert chosen.name == compute
    assert chosen.fp16_amp == (compute == "fp16") and chosen.bf16_amp == (compute == "bf16")
    assert chosen.torch_dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[compute]


@pytest.mark.parametrize("cc", sorted(CARDS))
@pytest.mark.parametrize("requested", ["auto", "4bit", "8bit", "bf16", "fp16", "fp32"])
def test_no_choice_computes_in_bf16_where_the_card_has_none(cc, requested):
    hw = gpu(cc)
    chosen = compute_dtype_for(hw, choose_precision(requested, hw).precision)
    if cc < (8, 0):
        assert chosen.name != "bf16"
    if requested == "fp16":
        assert chosen.fp16_amp  # asked for fp16: loss scaling on every card
    if requested == "fp32":
        assert chosen == ComputeDtype("fp32") and not chosen.fp16_amp and not chosen.bf16_amp


def test_cpu_and_too_old_gpus_compute_in_fp32():
    assert compute_dtype_for(CPU, choose_precision("auto", CPU).precision).name == "fp32"
    pascal = gpu((6, 1))
    assert compute_dtype_for(pascal, choose_precision("auto", pascal).precision).name == "fp32"


def loaded_on(hw, requested="auto"):
    """What load_for_training hands the trainer, without loading a model."""
    choice = choose_precision(requested, hw)
    device = "cuda" if hw.has_gpu and hw.trainable_gpu else "cpu"
    return SimpleNamespace(
        device=device, precision=choice.precision, compute=compute_dtype_for(hw, choice.precision)
    )


@pytest.mark.parametrize("cc", sorted(CARDS))
def test_trainer_flags_follow_the_choice(tmp_path, cc):
    from tunesmith.core.training.methods import common_arguments

    args = common_arguments(RunConfig(), loaded_on(gpu(cc)), tmp_path)
    assert (args["fp16"], args["bf16"]) == ((True, False) if cc < (8, 0) else (False, True))
    args = common_arguments(RunConfig(), loaded_on(CPU), tmp_path)
    assert (args["fp16"], args["bf16"]) == (False, False)


@pytest.mark.parametrize("cc", sorted(CARDS))
def test_4bit_loading_computes_in_the_chosen_dtype(cc):
    pytest.importorskip("transformers")
    from tunesmith.core.models.loading import _load_kwargs

    hw = gpu(cc)
    choice = choose_precision("auto", hw)
    compute = compute_dtype_for(hw, choice.precision)
    kwargs = _load_kwargs(choice, compute, full_finetune=False)
    want = torch.float16 if cc < (8, 0) else torch.bfloat16
    assert kwargs["quantization_config"].bnb_4bit_compute_dtype == want and kwargs["dtype"] == want


def test_fp16_full_finetune_keeps_fp32_weights():
    """The loss scaler cannot unscale fp16 gradients: full fine-tuning in fp16 loads fp32 weights and
    computes under fp16 autocast; LoRA keeps the frozen weights in fp16 (peft's adapters are fp32)."""
    from tunesmith.core.models.loading import _compute_notes, _load_kwargs

    hw = gpu((7, 5), bnb=None)
    choice = choose_precision("auto", hw)
    assert choice.precision == "fp16"
    compute = compute_dtype_for(hw, choice.precision)
    assert _load_kwargs(choice, compute, full_finetune=True)["dtype"] == torch.float32
    assert _load_kwargs(choice, compute, full_finetune=False)["dtype"] == torch.float16
    assert any("fp32" in note for note in _compute_notes(choice, compute, hw, lora=False))
    quantized = choose_precision("auto", gpu((7, 5)))
    assert any("no bf16" in n for n in _compute_notes(quantized, compute, gpu((7, 5)), lora=True))


def test_vram_estimate_counts_activations_in_the_compute_dtype():
    from tunesmith.core.vram import ModelShape, estimate_for_shape

    shape = ModelShape(2048, 8192, 16, 128256, 32, 8, 64, True, "llama")
    config = RunConfig()
    config.model.patch_kernels = False  # no kernels import needed for the stock count
    t4, ada = gpu((7, 5)), gpu((8, 9))
    fp16 = estimate_for_shape(shape, "4bit", config, t4)
    bf16 = estimate_for_shape(shape, "4bit", config, ada)
    assert fp16.parts == bf16.parts  # 2 bytes either way
    fp32 = estimate_for_shape(shape, "fp32", config, ada)
    sixteen = estimate_for_shape(shape, "bf16", config, ada)
    assert fp32.parts["activations"] == pytest.approx(2 * sixteen.parts["activations"])
    assert fp32.parts["logits"] == sixteen.parts["logits"]  # stock transformers' loss upcasts to fp32 anyway
