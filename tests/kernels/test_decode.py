"""The fast sampler against transformers' generate on tiny random Llama and Qwen3 models with LoRA (fp32,
CPU interpreter): greedy ids equal for 20 new tokens with left padding and rows that end early; the
NF4 path (weights quantized, the reference running on the dequantized weights) equal too; sampling at a
fixed seed draws the same tokens as generate's multinomial, with top-k/top-p/min-p filters."""

import os

import pytest
import torch

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "0", reason="whole-model tests run on the CPU interpreter"
)
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

import tunesmith.kernels.decode.decoder as decoder_module  # noqa: E402
from tunesmith.kernels import patch_model  # noqa: E402
from tunesmith.kernels.decode import FastGenerator, Sampling, UnsupportedModel  # noqa: E402
from tunesmith.kernels.ops.nf4 import NF4Weight, dequantize_nf4  # noqa: E402

COMMON = dict(
    vocab_size=211, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=16, max_position_embeddings=256, pad_token_id=0,
)  # fmt: skip
CONFIGS = {
    "llama": dict(tie_word_embeddings=False, rope_parameters={
        "rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
    "qwen3": dict(tie_word_embeddings=True),
}  # fmt: skip
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NEW = 20


def build(model_type, alpha=8):
    torch.manual_seed(0)
    cfg = transformers.AutoConfig.for_model(model_type, **COMMON, **CONFIGS[model_type])
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").float()
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
        p.requires_grad_(False)
    lcfg = peft.LoraConfig(
        r=4, lora_alpha=alpha, lora_dropout=0.0, target_modules=TARGETS, init_lora_weights=False
    )
    model = peft.get_peft_model(model, lcfg)
    patch_model(model)
    return model


def prompts():
    """Three left-padded prompts of lengths 7, 4 and 1 (pad id 0)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 211, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :6] = 0
    return ids.masked_fill(mask == 0, 0), mask


def reference(model, ids, mask, new=NEW, **kw):
    return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, pad_token_id=0, **kw)


def eos_for_early_stop(ref):
    """A token that row 0 emits a few steps in and another row does not emit before it: rows end apart."""
    new = ref[:, -NEW:]
    for t in new[0, 3:10].tolist():
        if t not in new[1, :12].tolist() and t != 0:
            return t
    raise AssertionError("no token to end row 0 early")


@pytest.mark.parametrize("model_type", ["llama", "qwen3"])
def test_greedy_equals_generate_with_padding_and_early_eos(model_type):
    model = build(model_type)
    ids, mask = prompts()
    gen = FastGenerator(model)
    ref = reference(model, ids, mask, do_sample=False, eos_token_id=None)
    got = gen.generate(ids, mask, max_new_tokens=NEW, sampling=Sampling(do_sample=False), pad_token_id=0)
    assert got.tolist() == ref.tolist()
    eos = eos_for_early_stop(ref)
    ref = reference(model, ids, mask, do_sample=False, eos_token_id=eos)
    got = gen.generate(ids, mask, max_new_tokens=NEW, sampling=Sampling(do_sample=False), eos_token_ids=(eos,),
                       pad_token_id=0)  # fmt: skip
    assert got.tolist() == ref.tolist()
    assert (got[0, -NEW:] == 0).any(), "row 0 ended early and was padded"


def quantize_bases(model):
    """Every LoRA base weight to NF4 (blocksize 64, double quant); the dense copy becomes its dequant, so
    the reference generate computes with exactly the weights the NF4 kernel reads."""
    bnbf = pytest.importorskip("bitsandbytes.functional")
    nf4 = {}
    for m in model.modules():
        if hasattr(m, "base_layer") and isinstance(m.base_layer, torch.nn.Linear):
            w = m.base_layer.weight
            packed, st = bnbf.quantize_4bit(w.data, blocksize=64, quant_type="nf4", compress_statistics=True)
            q = NF4Weight(
                packed=packed.view(torch.uint8).reshape(-1), absmax=st.absmax, code=st.code.float(),
                blocksize=64, shape=tuple(w.shape), dtype=torch.float32, absmax2=st.state2.absmax,
                code2=st.state2.code, blocksize2=st.state2.blocksize, offset=float(st.offset),
            )  # fmt: skip
            w.data.copy_(dequantize_nf4(q))
            nf4[id(w)] = q
    return nf4


def test_nf4_weights_greedy_equals_generate():
    model = build("qwen3")
    nf4 = quantize_bases(model)
    ids, mask = prompts()
    gen = FastGenerator(model)
    assert gen.unsupported() is None
    swapped = 0
    for group in gen._decoder.groups():
        for i, w in enumerate(group.weights):
            if id(w) in nf4:
                group.weights[i] = nf4[id(w)]
                swapped += 1
    assert swapped == 2 * 7
    # q/k/v, o and gate/up in one rows launch each; down (K = 96, not a multiple of the 64-element
    # quantization block) takes the general kernel: both paths are in this comparison
    assert [g.grouped() for g in gen._decoder.groups()] == [True, True, True, False] * 2
    # 12 new tokens (not NEW): each token runs every NF4 kernel in the interpreter; 12 are enough to
    # show the rows and general kernels agree with generate along a sequence
    ref = reference(model, ids, mask, new=12, do_sample=False, eos_token_id=None)
    # generate() re-reads the model; keep the swapped decoder by making its key match
    read = gen.unsupported
    gen.unsupported = lambda max_len=None: None
    try:
        got = gen.generate(ids, mask, max_new_tokens=12, sampling=Sampling(do_sample=False), pad_token_id=0)
    finally:
        gen.unsupported = read
    assert got.tolist() == ref.tolist()


@pytest.mark.parametrize(
    "kw", [dict(temperature=1.0, top_k=0), dict(temperature=0.7, top_k=20, top_p=0.9, min_p=0.05)]
)
def test_sampling_draws_what_generate_draws(kw):
    model = build("llama")
    ids, mask = prompts()
    hf = dict(kw)
    torch.manual_seed(123)
    ref = reference(model, ids, mask, do_sample=True, eos_token_id=None, **hf)
    torch.manual_seed(123)
    s = Sampling(True, kw.get("temperature", 1.0), kw.get("top_k", 0), kw.get("top_p", 1.0), kw.get("min_p"))
    got = FastGenerator(model).generate(ids, mask, max_new_tokens=NEW, sampling=s, pad_token_id=0)
    assert got.shape == ref.shape
    assert ((got >= 0) & (got < 211)).all()
    assert got.tolist() == ref.tolist()


def test_sampling_stops_at_eos_and_pads():
    model = build("qwen3")
    ids, mask = prompts()
    torch.manual_seed(5)
    eos = (7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)  # many stop tokens: rows end soon
    got = FastGenerator(model).generate(ids, mask, max_new_tokens=NEW, sampling=Sampling(), eos_token_ids=eos,
                                        pad_token_id=0)  # fmt: skip
    new = got[:, ids.shape[1] :]
    for row in new.tolist():
        ends = [i for i, t in enumerate(row) if t in eos]
        if ends:
            assert all(t == 0 for t in row[ends[0] + 1 :])
    if new.shape[1] < NEW:  # stopped early: every row ended, the last one at the last step
        assert all(any(t in eos for t in row) for row in new.tolist())


def test_unsupported_family_says_why():
    cfg = transformers.AutoConfig.for_model("gpt2", n_embd=32, n_layer=1, n_head=2, vocab_size=50)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    gen = FastGenerator(model)
    assert "gpt2" in gen.unsupported()
    with pytest.raises(UnsupportedModel):
        gen.generate(torch.ones(1, 3, dtype=torch.long), max_new_tokens=2)


@pytest.mark.parametrize("alpha", [8, 6])
def test_projection_groups_equal_peft_modules(alpha):
    """Scaling 2 (folded into B) and 1.5 (applied after the matmul): each group's output is peft's."""
    model = build("llama", alpha)
    gen = FastGenerator(model)
    assert gen.unsupported() is None
    gen._decoder.refresh()
    layer = model.get_base_model().model.layers[1]
    groups = gen._decoder.layers[1]
    x = torch.randn(3, 64)
    with torch.no_grad():
        for group, mods in (
            (groups.qkv, ("q_proj", "k_proj", "v_proj")),
            (groups.gate_up, ("gate_proj", "up_proj")),
        ):
            parent = layer.self_attn if mods[0] == "q_proj" else layer.mlp
            ref = torch.cat([getattr(parent, m)(x) for m in mods], dim=1)
            torch.testing.assert_close(group(x), ref, rtol=1e-5, atol=1e-6)
    assert (groups.qkv.scale is None) == (alpha == 8)


def test_wide_batches_dequantize_the_group_once(monkeypatch):
    """From DENSE_FROM_ROWS rows a group's NF4 weights are dequantized in one launch and multiplied in
    one GEMM: each group's output (adapter term, the down projection's SwiGLU input and residual
    included) is the peft modules' on the dequantized weights, as the rows kernel's is."""
    model = build("qwen3")
    nf4 = quantize_bases(model)
    gen = FastGenerator(model)
    assert gen.unsupported() is None
    dec = gen._decoder
    for group in dec.groups():
        group.weights[:] = [nf4[id(w)] for w in group.weights]
    dec.refresh()
    layer, groups = model.get_base_model().model.layers[0], dec.layers[0]
    x, gu, res = torch.randn(3, 64), torch.randn(3, 192), torch.randn(3, 64)
    h = torch.nn.functional.silu(gu[:, :96]) * gu[:, 96:]
    stacked = []  # the wide path's one dequant launch for q/k/v and gate/up
    real = decoder_module.dequantize_nf4_stacked
    monkeypatch.setattr(
        decoder_module, "dequantize_nf4_stacked", lambda ws, out: stacked.append(len(ws)) or real(ws, out)
    )
    with torch.no_grad():
        refs = {
            "qkv": torch.cat([getattr(layer.self_attn, m)(x) for m in ("q_proj", "k_proj", "v_proj")], 1),
            "gate_up": torch.cat([layer.mlp.gate_proj(x), layer.mlp.up_proj(x)], 1),
            "down": res + layer.mlp.down_proj(h),
        }
        for wide in (False, True):
            monkeypatch.setattr(decoder_module, "DENSE_FROM_ROWS", 2 if wide else 17)
            got = {"qkv": groups.qkv(x), "gate_up": groups.gate_up(x), "down": groups.down(gu, res, glu=True)}
            for name, ref in refs.items():
                torch.testing.assert_close(got[name], ref, rtol=1e-5, atol=1e-5, msg=f"{name}, wide={wide}")
            assert stacked == ([3, 2] if wide else [])


def test_reused_generator_follows_in_place_adapter_updates():
    """GRPO's case: one generator across optimizer steps that change A and B in place."""
    model = build("qwen3")
    ids, mask = prompts()
    gen = FastGenerator(model, keep_buffers=False)  # as core.training.rollout makes it
    greedy = Sampling(do_sample=False)
    first = gen.generate(ids, mask, max_new_tokens=8, sampling=greedy, pad_token_id=0)
    assert gen._state is None  # the KV cache went back for the training step in between
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(0.3 * torch.randn_like(p))
    ref = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False, eos_token_id=None,
                         pad_token_id=0)  # fmt: skip
    got = gen.generate(ids, mask, max_new_tokens=8, sampling=greedy, pad_token_id=0)
    assert got.tolist() == ref.tolist()
    assert got.tolist() != first.tolist(), "the update should change the completions"
