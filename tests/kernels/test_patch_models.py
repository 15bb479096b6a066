"""Whole models: a small random model of each family, with LoRA attached by peft, gives the same loss
and LoRA gradients patched as unpatched (fp32 on the CPU), and the revert restores the stock model."""

import gc
import os
import weakref
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="whole-model tests run on the CPU interpreter"
)
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from kernel_compare import assert_close  # noqa: E402

from tunesmith.kernels import patch_model, unpatch_model  # noqa: E402
from tunesmith.kernels.patch import ComparisonOptions  # noqa: E402

COMMON = dict(
    vocab_size=301, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=16, max_position_embeddings=128, tie_word_embeddings=False,
)  # fmt: skip
CONFIGS = {
    "llama": dict(rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0,
                  "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
    "mistral": dict(sliding_window=9),
    "qwen2": dict(),
    "qwen3": dict(),
    "gemma2": dict(final_logit_softcapping=5.0, attn_logit_softcapping=20.0, query_pre_attn_scalar=16,
                   sliding_window=9, hidden_activation="gelu_pytorch_tanh"),
    "gemma3_text": dict(final_logit_softcapping=5.0, query_pre_attn_scalar=16, sliding_window=9,
                        hidden_activation="gelu_pytorch_tanh",
                        rope_parameters={"full_attention": {"rope_type": "linear", "rope_theta": 10000.0,
                                                            "factor": 2.0},
                                         "sliding_attention": {"rope_type": "default", "rope_theta": 1000.0}}),
}  # fmt: skip
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build(model_type, attn="eager"):
    torch.manual_seed(0)
    cfg = transformers.AutoConfig.for_model(model_type, **COMMON, **CONFIGS[model_type])
    cfg._attn_implementation = attn
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation=attn).float()
    for p in model.parameters():  # Gemma's norm weights start at zero: make every weight matter
        p.data.add_(0.02 * torch.randn_like(p))
    return model


def add_lora(model):
    for p in model.parameters():
        p.requires_grad_(False)
    lcfg = peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, init_lora_weights=False
    )
    return peft.get_peft_model(model, lcfg)


def loss_and_grads(model, ids, labels):
    model.zero_grad(set_to_none=True)
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


FUSED = {
    "RMSNormFunctionBackward", "LoRAQKVFunctionBackward", "RoPEInplaceFunctionBackward", "LoRALinearFunctionBackward",
    "LoRAMLPFunctionBackward", "FusedLinearCrossEntropyFunctionBackward",
}  # fmt: skip


def graph_nodes(loss):
    seen, todo = set(), [loss.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        todo += [n for n, _ in node.next_functions]
    return {type(n).__name__ for n in seen}


def compare(model, ids, labels, **patch_kwargs):
    model.train()
    ref_loss, ref_grads = loss_and_grads(model, ids, labels)
    report = patch_model(model, **patch_kwargs)
    assert report.patched and report.replaced["attention"] == 2 and report.replaced["mlp"] == 2
    if not patch_kwargs.get("checkpointing"):  # every fused kernel is in the graph, none fell back
        fused = FUSED
        comparison = patch_kwargs.get("_comparison")
        if comparison is not None and not comparison.inplace_rope:
            fused = FUSED - {"RoPEInplaceFunctionBackward"} | {"RoPEFunctionBackward"}
        assert graph_nodes(model(input_ids=ids, labels=labels).loss) >= fused
    loss, grads = loss_and_grads(model, ids, labels)
    assert_close("loss", loss, ref_loss, rtol=1e-5)
    assert grads.keys() == ref_grads.keys() and len(grads) == 2 * 2 * len(TARGETS)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=1e-4)
    assert unpatch_model(model)
    again, _ = loss_and_grads(model, ids, labels)
    assert_close("loss after revert", again, ref_loss, rtol=1e-6)
    return report


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 301, (2, 11), generator=g)
    labels = ids.clone()
    labels[0, :5] = -100
    return ids, labels


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_patched_model_matches_stock(model_type):
    ids, labels = batch()
    compare(add_lora(build(model_type)), ids, labels)


def test_patch_before_peft_and_sdpa():
    ids, labels = batch(2)
    model = build("llama", attn="sdpa")
    for p in model.parameters():
        p.requires_grad_(False)
    model.train()
    stock_loss = model(input_ids=ids, labels=labels).loss
    report = patch_model(model)  # before peft wraps it
    model = add_lora(model)
    model.train()
    loss, grads = loss_and_grads(model, ids, labels)
    report.revert()
    ref_loss, ref_grads = loss_and_grads(model, ids, labels)
    assert_close("loss", loss, ref_loss, rtol=1e-5)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=1e-4)
    assert not torch.allclose(stock_loss, ref_loss)  # the LoRA weights are not a no-op


def test_checkpointing_offload_mode_matches():
    ids, labels = batch(3)
    model = add_lora(build("qwen3"))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    report = compare(model, ids, labels, checkpointing="offload")
    assert report.replaced["checkpoint_offload"] == 2


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
@pytest.mark.parametrize("lean", [True, False])
def test_offload_checkpointing_every_family_matches(model_type, lean):
    """The recompute path of each family (lean: down projection skipped where the family allows it,
    dequantized weights handed from the recompute to the backward) against the stock, unchecked model."""
    ids, labels = batch(10)
    report = compare(
        add_lora(build(model_type)),
        ids,
        labels,
        checkpointing="offload",
        _comparison=ComparisonOptions(lean_recompute=lean),
    )
    assert report.replaced["checkpoint_offload"] == 2


@pytest.mark.parametrize(
    "model_type,checkpointing", [("llama", "offload"), ("gemma2", "offload"), ("qwen3", None)]
)
def test_mlp_over_tiles_matches_stock(monkeypatch, model_type, checkpointing):
    """The MLP over row tiles of 5 rows (ops.lora_mlp; as 160K tokens of an 8B model run, here 22 rows in
    5 tiles): loss and LoRA gradients equal the stock model's, in the lean recompute (Llama: the tiles run in
    the backward only), where the MLP's output is read after it (Gemma's post-norm), and unchecked."""
    from tunesmith.kernels.ops import lora_mlp

    monkeypatch.setattr(lora_mlp, "MLP_TILE_BYTES", 5 * 2 * COMMON["intermediate_size"] * 4)
    tiled, backward = [], lora_mlp._tiled_backward
    monkeypatch.setattr(lora_mlp, "_tiled_backward", lambda *a: tiled.append(1) or backward(*a))
    ids, labels = batch(13)
    compare(add_lora(build(model_type)), ids, labels, checkpointing=checkpointing)
    assert len(tiled) == 2  # each layer's MLP backward ran over tiles


class MatmulShapes(TorchDispatchMode):
    """Records (K, N) of every 2-D matmul (mm, addmm) that runs under it."""

    def __init__(self):
        super().__init__()
        self.kn = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        op = func.overloadpacket
        if op in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.addmm_):
            b = args[1] if op is torch.ops.aten.mm else args[2]
            self.kn[tuple(b.shape)] += 1
        return func(*args, **(kwargs or {}))


def count_materializations(monkeypatch, model):
    """Counts, per projection kind, how often the LoRA Functions materialize its base weight."""
    from tunesmith.kernels.ops import lora
    from tunesmith.kernels.patch.projections import lora_proj_of

    names = {}
    for name, module in model.named_modules():
        kind = name.rsplit(".", 1)[-1]
        if kind in TARGETS:
            names[id(lora_proj_of(module).weight)] = kind
    counts = Counter()

    def counting(fn):
        def wrapped(w, *args, **kwargs):
            counts[names.get(id(w), "?")] += 1
            return fn(w, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(lora, "dense_weight", counting(lora.dense_weight))
    monkeypatch.setattr(lora, "dequantize_nf4", counting(lora.dequantize_nf4))
    return counts


@pytest.mark.parametrize(
    "model_type,lean,down_gemms,dequants",
    [
        # lean, Llama family: the recompute skips down (no GEMM, no dequant); the recompute's q/k/v, o,
        # gate/up weights serve the backward: each weight materialized once per layer in the backward
        ("llama", True, 0, dict.fromkeys(TARGETS, 1)),
        # full recompute: down's forward GEMM once per layer, every weight twice (recompute + backward)
        ("llama", False, 1, dict.fromkeys(TARGETS, 2)),
        # Gemma: post_feedforward_layernorm needs the MLP output, so down runs; the rest is reused
        ("gemma2", True, 1, {**dict.fromkeys(TARGETS, 1), "down_proj": 2}),
    ],
)
def test_lean_recompute_does_less(monkeypatch, model_type, lean, down_gemms, dequants):
    """Proves the saving: down-projection forward GEMMs ([N, I] @ [I, H]) and base-weight dequants
    during one backward of a checkpointed model, per layer."""
    ids, labels = batch(11)
    model = add_lora(build(model_type))
    model.train()
    patch_model(model, checkpointing="offload", _comparison=ComparisonOptions(lean_recompute=lean))
    counts = count_materializations(monkeypatch, model)
    loss = model(input_ids=ids, labels=labels).loss
    assert dict(counts) == dict.fromkeys(TARGETS, 2)  # the forward: each weight once, 2 layers
    counts.clear()
    with MatmulShapes() as mm:
        loss.backward()
    cfg = model.get_base_model().config
    assert mm.kn[(cfg.intermediate_size, cfg.hidden_size)] == 2 * down_gemms
    assert dict(counts) == {k: 2 * v for k, v in dequants.items()}
    unpatch_model(model)


@pytest.mark.parametrize("model_type", ["llama", "qwen3"])
def test_sdpa_with_offload_checkpointing_matches(model_type):
    """The benchmark's path: SDPA attention on in-place rotated q/k (strided views of the fused
    projection's buffer), lean recompute, against the stock SDPA model."""
    ids, labels = batch(14)
    compare(add_lora(build(model_type, attn="sdpa")), ids, labels, checkpointing="offload")


class AttentionKernels(TorchDispatchMode):
    """Counts the fused attention forward kernels (on the CPU: flash-for-CPU) that run under it."""

    def __init__(self):
        super().__init__()
        self.forwards = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.forwards += func is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default
        return func(*args, **(kwargs or {}))


def kept_refs(monkeypatch):
    """Weak references to every tensor the patched attention hands to keep_for_recompute and it keeps
    (the real one runs)."""
    from tunesmith.kernels.patch import forwards

    refs, keep = [], forwards.keep_for_recompute

    def recording(key, items):
        kept = keep(key, items)
        if kept:
            refs.extend(weakref.ref(x) for x in items if isinstance(x, torch.Tensor))
        return kept

    monkeypatch.setattr(forwards, "keep_for_recompute", recording)
    return refs


def count_qkv_projections(monkeypatch) -> Counter:
    """Counts the fused q/k/v projection forwards (lora_group_forward with three adapters) that run."""
    from tunesmith.kernels.ops import lora

    counts, lora_group_forward = Counter(), lora.lora_group_forward

    def counting(x2, As, Bs, frozens):
        counts["calls"] += len(As) == 3
        return lora_group_forward(x2, As, Bs, frozens)

    monkeypatch.setattr(lora, "lora_group_forward", counting)
    return counts


def count_single_projections(monkeypatch) -> Counter:
    """Counts the single-projection forward GEMMs (lora.lora_linear_forward: o, and down outside a lean
    recompute) that run."""
    from tunesmith.kernels.ops import lora, lora_mlp

    counts, lora_linear_forward = Counter(), lora.lora_linear_forward

    def counting(*args, **kwargs):
        counts["calls"] += 1
        return lora_linear_forward(*args, **kwargs)

    for module in (lora, lora_mlp):  # down runs in ops.lora_mlp
        monkeypatch.setattr(module, "lora_linear_forward", counting)
    return counts


def test_stash_budget_bounds_what_is_kept(monkeypatch):
    """With a budget for one layer's stash, the first layer keeps and the second recomputes; the
    gradients stay those of the stock model."""
    ids, labels = batch(18)
    model = add_lora(build("llama", attn="sdpa"))
    model.train()
    ref_loss, ref_grads = loss_and_grads(model, ids, labels)
    # what one layer keeps (out, lse, q, k, v, h), counted as pinned: measured on one unbounded pass
    from tunesmith.kernels.memory import offload

    patch_model(model, checkpointing="offload")
    model(input_ids=ids, labels=labels).loss.backward()
    per_layer = offload._CURRENT[0].kept_bytes // 2
    unpatch_model(model)
    refs = kept_refs(monkeypatch)
    patch_model(
        model, checkpointing="offload", _comparison=ComparisonOptions(stash_budget_gib=per_layer / 2**30)
    )
    with AttentionKernels() as kernels:
        loss, grads = loss_and_grads(model, ids, labels)
    assert kernels.forwards == 2 + 1  # two layers forward, the second one's recompute
    assert len(refs) == 6
    assert_close("loss", loss, ref_loss, rtol=1e-5)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=1e-4)
    unpatch_model(model)


def two_steps_one_backward(model, batches):
    """Loss and LoRA gradients of two forwards backpropagated together."""
    model.zero_grad(set_to_none=True)
    losses = [model(input_ids=ids, labels=labels).loss for ids, labels in batches]
    (losses[0] + 2 * losses[1]).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return torch.stack(losses).detach(), grads


@pytest.mark.parametrize(
    "checkpointing,stash,kernels_per_layer",
    [("offload", True, 1), ("offload", False, 2), ("device", True, 2)],  # device mode keeps no stash
)
def test_attention_stash_skips_the_kernel_in_the_recompute(
    monkeypatch, checkpointing, stash, kernels_per_layer
):
    """Offload checkpointing with the stash: the attention forward kernel runs once per layer and
    forward (never in the recompute), with two forwards before one backward; the loss and every LoRA
    gradient equal the stock model's; nothing kept is left after the backward."""
    batches = [batch(16), batch(17)]
    model = add_lora(build("llama", attn="sdpa"))
    model.train()
    ref_losses, ref_grads = two_steps_one_backward(model, batches)
    patch_model(model, checkpointing=checkpointing, _comparison=ComparisonOptions(stash_attention=stash))
    refs = kept_refs(monkeypatch)
    qkv_projections = count_qkv_projections(monkeypatch)
    single_projections = count_single_projections(monkeypatch)
    with AttentionKernels() as kernels:
        losses, grads = two_steps_one_backward(model, batches)
    n = model.get_base_model().config.num_hidden_layers
    assert kernels.forwards == 2 * n * kernels_per_layer
    # the q/k/v projection (and its rotation) is not run again in the recompute either, nor o's:
    # per layer and forward, o and down in the forward, o again in a recompute without the stash
    # (the lean recompute skips down's anyway)
    assert qkv_projections["calls"] == 2 * n * kernels_per_layer
    assert single_projections["calls"] == 2 * n * (2 + kernels_per_layer - 1)
    assert_close("losses", losses, ref_losses, rtol=1e-5)
    assert grads.keys() == ref_grads.keys()
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=1e-4)
    # out, lse, rotated q, k and v, h after attention; each layer and forward
    assert len(refs) == (2 * n * 6 if kernels_per_layer == 1 else 0)
    gc.collect()
    assert all(r() is None for r in refs)
    unpatch_model(model)


def test_rope_into_new_tensors_option_matches():
    ids, labels = batch(13)
    compare(add_lora(build("qwen3")), ids, labels, _comparison=ComparisonOptions(inplace_rope=False))


def test_keep_layers_unchecked_matches():
    ids, labels = batch(9)
    model = add_lora(build("mistral"))
    report = compare(model, ids, labels, checkpointing="device", keep_layers=1)
    assert report.replaced["checkpoint_device"] == 1


def test_checkpointing_survives_gradient_checkpointing_enable():
    model = add_lora(build("llama"))
    patch_model(model, checkpointing="offload")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layers = model.get_base_model().model.layers
    assert all(getattr(layer._gradient_checkpointing_func, "tunesmith_offload", False) for layer in layers)
    unpatch_model(model)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert not any(hasattr(layer._gradient_checkpointing_func, "tunesmith_offload") for layer in layers)


def test_checkpointing_toggles_leave_one_input_grad_hook():
    """TRL turns checkpointing off and on around every DPO reference pass; transformers registers a new
    input-embedding hook at each enable: a patched model keeps one, and its gradients stay exact."""
    from trl.models.utils import disable_gradient_checkpointing

    ids, labels = batch(9)
    ref = add_lora(build("llama"))
    patch_model(ref, checkpointing="offload")
    ref.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ref_loss, ref_grads = loss_and_grads(ref, ids, labels)
    model = add_lora(build("llama"))
    patch_model(model, checkpointing="offload")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    embedding = model.get_input_embeddings()
    for _ in range(5):
        with disable_gradient_checkpointing(model, {"use_reentrant": False}), torch.no_grad():
            model(input_ids=ids)
    assert len(embedding._forward_hooks) == 1
    layers = model.get_base_model().model.layers
    assert all(layer.gradient_checkpointing for layer in layers)
    loss, grads = loss_and_grads(model, ids, labels)
    assert_close("loss", loss, ref_loss)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name])
    unpatch_model(model)


def test_unknown_family_left_stock():
    cfg = transformers.AutoConfig.for_model("gpt2", n_layer=1, n_embd=32, n_head=2, vocab_size=50)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    report = patch_model(model)
    assert not report.patched and "not supported" in report.notes[0]


def nf4_llama(tmp_path):
    pytest.importorskip("bitsandbytes")
    build("llama").save_pretrained(tmp_path)
    qcfg = transformers.BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )  # fmt: skip
    model = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, quantization_config=qcfg, dtype=torch.float32, attn_implementation="eager"
    )
    assert type(model.model.layers[0].mlp.down_proj).__name__ == "Linear4bit"
    return add_lora(model)


@pytest.mark.parametrize("checkpointing", [None, "offload"])
def test_qlora_nf4_model_matches_stock(tmp_path, checkpointing):
    ids, labels = batch(4)
    compare(nf4_llama(tmp_path), ids, labels, checkpointing=checkpointing)


def test_lean_recompute_holds_one_layer_of_weights(tmp_path, monkeypatch):
    """The weights handed from a recompute to its backward are bounded: whenever a base weight is
    dequantized in the backward, at most one layer's q/k/v, o and gate/up are alive (none from
    another layer), and none is left after the step; the plain forward keeps none."""
    import weakref

    from tunesmith.kernels.ops import lora, lora_mlp

    model = nf4_llama(tmp_path)
    model.train()
    patch_model(model, checkpointing="offload")
    alive, peaks = [], []

    def tracking(fn):
        def wrapped(*args, **kwargs):
            peaks.append(sum(r() is not None for r in alive))
            out = fn(*args, **kwargs)
            alive.append(weakref.ref(out))
            return out

        return wrapped

    stacked, dense = tracking(lora.stacked_weight), tracking(lora._w)
    for module in (lora, lora_mlp):  # the MLP block (ops.lora_mlp) builds on ops.lora's helpers
        monkeypatch.setattr(module, "stacked_weight", stacked)
        monkeypatch.setattr(module, "_w", dense)
    ids, labels = batch(12)
    loss = model(input_ids=ids, labels=labels).loss
    assert max(peaks) == 0 and len(peaks) == 2 * 4  # forward: 4 dequants per layer, none kept
    peaks.clear()
    loss.backward()
    # per layer: recompute q/k/v, gate/up (0, 1 alive before each; o is not formed, the layer's h was
    # kept), backward down (2 alive: q/k/v's, gate/up's), o (1: q/k/v's, waiting for their backward)
    assert peaks == [0, 1, 2, 1] * 2
    del loss
    assert all(r() is None for r in alive)
    unpatch_model(model)


def test_embeddings_on_cpu_option():
    ids, labels = batch(5)
    model = add_lora(build("qwen2"))
    model.train()
    ref_loss, ref_grads = loss_and_grads(model, ids, labels)
    report = patch_model(model, embeddings_on_cpu=True)
    assert report.replaced["embeddings_on_cpu"] == 1
    loss, grads = loss_and_grads(model, ids, labels)
    assert_close("loss", loss, ref_loss, rtol=1e-5)
    for name in ref_grads:
        assert_close(name, grads[name], ref_grads[name], rtol=1e-4)
    report.revert()


@pytest.mark.parametrize("order", ["patch_first", "trl_first"])
def test_works_with_trl_fused_lm_head(order):
    """TRL's SFTTrainer adds its own fused LM head (model(..., fused_lm_head=True)); both orders work."""
    trl_utils = pytest.importorskip("trl.trainer.utils")
    ids, labels = batch(6)
    model = build("llama")
    ref = model(input_ids=ids, labels=labels).loss
    if order == "trl_first":
        trl_utils.add_fused_lm_head(model)
        patch_model(model)
    else:
        patch_model(model)
        trl_utils.add_fused_lm_head(model)
    model.train()
    out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    assert_close("trl loss", -out.log_probs.sum() / out.label_mask.sum(), ref, rtol=1e-5)
    assert_close("plain loss", model(input_ids=ids, labels=labels).loss, ref, rtol=1e-5)


def test_generate_with_cache_matches_stock():
    model = add_lora(build("qwen3"))
    model.eval()
    ids = batch(7)[0][:1, :6]
    ref = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
    report = patch_model(model)
    got = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
    report.revert()
    assert torch.equal(got, ref)


def test_autocast_bf16_runs_close_to_stock():
    ids, labels = batch(8)
    model = add_lora(build("llama"))
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = model(input_ids=ids, labels=labels).loss
        report = patch_model(model)
        loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    report.revert()
    assert abs(loss.item() - ref.item()) < 2e-2 * abs(ref.item())
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_cpu_model_without_interpreter_left_stock(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    report = patch_model(build("llama"))
    assert not report.patched and "CUDA" in report.notes[0]


class StepOps(TorchDispatchMode):
    """Counts ATen ops and Triton launches inside the checkpointed decoder layers of one step, per
    phase: forward, recompute (the layer re-run inside its backward), backward."""

    def __init__(self, monkeypatch):
        super().__init__()
        import triton.runtime.interpreter as interp
        import triton.runtime.jit as jit

        from tunesmith.kernels.memory import offload

        self.aten, self.triton, self.phase = Counter(), Counter(), "forward"
        self.depth, self.in_triton, self._recomputing = 0, False, offload.recomputing
        for cls in (jit.JITFunction, interp.InterpretedFunction):
            monkeypatch.setattr(cls, "run", self._counting_run(cls.run))
        fn_cls = offload.OffloadedCheckpointFunction
        monkeypatch.setattr(fn_cls, "forward", staticmethod(self._inside(fn_cls.forward)))
        monkeypatch.setattr(fn_cls, "backward", staticmethod(self._inside(fn_cls.backward)))

    def where(self):
        return "recompute" if self.phase == "backward" and self._recomputing() else self.phase

    def _counting_run(self, run):
        def counted(kernel, *args, **kwargs):
            if self.in_triton:
                return run(kernel, *args, **kwargs)
            if self.depth:
                self.triton[self.where()] += 1
            self.in_triton = True
            try:
                return run(kernel, *args, **kwargs)
            finally:
                self.in_triton = False

        return counted

    def _inside(self, fn):
        def wrapped(*args, **kwargs):
            self.depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1

        return wrapped

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.depth and not self.in_triton:
            self.aten[self.where()] += 1
        return func(*args, **(kwargs or {}))


# Per decoder layer of one step (Llama family, dense base, LoRA on all 7 projections, SDPA, offload
# checkpointing, lean recompute, attention stash), after the host-overhead cuts of 2026-11-28 and the
# attention stash (without it: ATen 116 / 108 / 128.5; this model before the cuts:
# ATen 116 / 108 / 129.5, Triton 5 / 4 / 5.5; an NF4 base, bench/host_overhead.py: ATen 126 / 116 / 141
# -> 109 / 99 / 130, Triton 12 / 10 / 6.8 -> 8 / 6 / 4.8).  A change that adds work per layer fails
# here: every ATen op and Triton launch costs host time per layer and pass, times 32 layers in
# Llama-3.1-8B, whose 2x2048 step is host-bound (bench/HISTORY.md, run 7).
# With q, k, v kept as well (the recompute runs no q/k/v projection; the backward builds the stacked
# q/k/v weight itself): recompute 106 -> 69, backward 126.5 -> 148.5 ATen ops, 15 fewer in all; with
# h kept too (no o projection in the recompute): recompute 64.
MAX_OPS_PER_LAYER = {"forward": (115, 4), "recompute": (64, 2), "backward": (148.5, 3.5)}  # (ATen, Triton)


def test_host_ops_per_layer_do_not_grow(monkeypatch):
    ids, labels = batch(15)
    model = add_lora(build("llama", attn="sdpa"))
    model.train()
    patch_model(model, checkpointing="offload")
    model(input_ids=ids, labels=labels).loss.backward()  # warm-up
    model.zero_grad(set_to_none=True)
    counter = StepOps(monkeypatch)
    with counter:
        loss = model(input_ids=ids, labels=labels).loss
        counter.phase = "backward"
        loss.backward()
    n = model.get_base_model().config.num_hidden_layers
    got = {p: (counter.aten[p] / n, counter.triton[p] / n) for p in MAX_OPS_PER_LAYER}
    print("ops per layer (ATen, Triton):", got)
    for phase, (max_aten, max_triton) in MAX_OPS_PER_LAYER.items():
        aten, launches = got[phase]
        assert aten <= max_aten and launches <= max_triton, (
            f"{phase}: {got[phase]} > {(max_aten, max_triton)}"
        )
    unpatch_model(model)
