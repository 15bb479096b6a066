"""The lean adapter switches (core.models.adapter_switch) on the embedded model: the same logits and
requires_grad flags as peft's own `disable_adapter()` and `set_adapter()`, the adapted model back
afterwards."""

import pytest
import torch

from tunesmith.core.config import RunConfig
from tunesmith.core.hardware import detect_hardware
from tunesmith.core.models.loading import load_for_training


def load_tuned():
    """The demo model with a LoRA on all 7 projections whose B is not zero (the adapter changes logits)."""
    config = RunConfig()
    config.model.source, config.model.precision = "demo", "fp32"
    config.lora.r = 4
    loaded = load_for_training(config.model, config.lora, detect_hardware())
    model = loaded.model
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    model.eval()
    return model


@pytest.fixture(scope="module")
def tuned():
    return load_tuned()


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_switched_off_adapter_gives_the_base_models_logits_and_comes_back(tuned):
    from peft import PeftModel

    ids = torch.tensor([[1, 504, 3458, 314, 260, 1789, 30]])
    assert "disable_adapter" in vars(tuned)  # the engine installed the lean switch at load
    adapted = logits(tuned, ids)
    grads_before = {n: p.requires_grad for n, p in tuned.named_parameters()}
    with PeftModel.disable_adapter(tuned):  # peft's own context manager, on the same model
        stock_base = logits(tuned, ids)
    with tuned.disable_adapter():
        lean_base = logits(tuned, ids)
        assert tuned._adapters_disabled
    assert not torch.allclose(adapted, stock_base, atol=1e-3)  # the adapter matters here
    assert torch.equal(lean_base, stock_base)
    assert torch.equal(logits(tuned, ids), adapted)
    assert not tuned._adapters_disabled
    assert {n: p.requires_grad for n, p in tuned.named_parameters()} == grads_before


def test_each_layer_gets_its_own_flag_back(tuned):
    """A layer switched off before the context stays off after it (peft's would switch every layer on)."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in tuned.modules() if isinstance(m, LoraLayer)]
    layers[0]._disable_adapters = True
    try:
        with tuned.disable_adapter():
            assert all(layer.disable_adapters for layer in layers)
        assert layers[0].disable_adapters
        assert not any(layer.disable_adapters for layer in layers[1:])
    finally:
        layers[0]._disable_adapters = False


def test_trls_reference_adapter_round_trip_matches_peft():
    """TRL's DPO adds a frozen "ref" adapter and switches to it for the reference pass and back: the
    logits under "ref", and the active adapter and requires_grad flags after the round trip, are peft's."""
    from peft import PeftModel

    model = load_tuned()
    model.add_adapter("ref", model.peft_config["default"])  # as TRL does; its B starts at zero
    for name, p in model.named_parameters():
        if ".ref." in name:
            p.requires_grad_(False)
    ids = torch.tensor([[1, 504, 3458, 314, 260, 1789, 30]])
    adapted = logits(model, ids)
    with model.disable_adapter():
        base = logits(model, ids)
    flags = {}
    for how, switch in (
        ("peft", lambda name: PeftModel.set_adapter(model, name)),
        ("lean", model.set_adapter),
    ):
        switch("ref")
        under_ref = logits(model, ids)
        assert torch.equal(under_ref, base)  # a zero-B adapter is the base model
        assert model.active_adapter == "ref" and model.active_adapters == ["ref"]
        flags[how, "ref"] = {n: p.requires_grad for n, p in model.named_parameters()}
        switch("default")
        assert torch.equal(logits(model, ids), adapted)
        flags[how, "default"] = {n: p.requires_grad for n, p in model.named_parameters()}
    assert flags["lean", "ref"] == flags["peft", "ref"]
    assert flags["lean", "default"] == flags["peft", "default"]
    assert any(".default." in n and trainable for n, trainable in flags["lean", "default"].items())
    with pytest.raises(ValueError, match="Adapter nope not found"):
        model.set_adapter("nope")
