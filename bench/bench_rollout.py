"""GRPO rollout speed on the GPU machine: transformers' generate (TRL's plain path) against our sampler.

    python3 bench/bench_rollout.py --model DIR --out rollout.json [--new 256] [--seqs 4] [--prompt-len 100]

DIR: a model folder (the anchors' random Qwen3-4B: `python3 .anchors/make_model.py DIR --arch qwen3-4b`).
Loads it in NF4 (bitsandbytes, double quant, bf16 compute) + peft LoRA r=16 on all 7 projections (B
given small random values so the adapters count), patches it with `tunesmith.kernels.patch_model`, then
for 1 prompt of --prompt-len random tokens x --seqs sequences x --new new tokens (EOS banned until the
end, so both make every token), sampling at temperature 1:
  (a) `model.generate` on the peft model   (b) our FastGenerator, CUDA graph   (c) ours without graph
  (d) ours with the graph but the attention prologue as separate ops (the fused kernel's gain)
and prints ms per token step, total seconds and peak VRAM of each, plus greedy agreement of the first
--check tokens between (a) and (b).  Run with TRITON_INTERPRET=0 and bitsandbytes on PYTHONPATH.
Without a GPU (TRITON_INTERPRET=1, a tiny model) it loads the model dense: a smoke test of the script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load(path: str):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=q if CUDA else None,  # bitsandbytes repacks 4-bit weights for its CPU kernel
        dtype=torch.bfloat16,
        attn_implementation="sdpa",
        device_map={"": 0 if CUDA else "cpu"},
    )
    for p in model.parameters():
        p.requires_grad_(False)
    lora = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none", target_modules=TARGETS,
                      task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, lora)
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 1e-3)
    from tunesmith.kernels import patch_model

    report = patch_model(model)
    model.eval()
    tok = AutoTokenizer.from_pretrained(path)
    return model, tok, report


CUDA = torch.cuda.is_available()  # without a GPU (TRITON_INTERPRET=1): a smoke test of this script only


def timed(fn):
    if CUDA:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if CUDA:
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0, torch.cuda.max_memory_allocated() / 2**30 if CUDA else 0.0


def step_logits(model, gen, ids, mask, eos, pad):
    """Our first decode step's logits against the model's own full forward over the same tokens: the
    exactness check that random weights allow (their top-2 logits are often within bf16 rounding, so
    greedy paths part early even between two correct implementations)."""
    from tunesmith.kernels.decode import Sampling

    got = {}
    gen.unsupported()
    dec = gen._decoder
    stock_step = type(dec).step

    def spy(*a):
        out = stock_step(dec, *a)
        got["logits"] = out.clone()  # before the sampler bans EOS in place (min_new_tokens)
        return out

    dec.step = spy
    try:
        seq = gen.generate(ids, mask, max_new_tokens=2, sampling=Sampling(do_sample=False), eos_token_ids=(eos,),
                           pad_token_id=pad, min_new_tokens=2)  # fmt: skip
    finally:
        del dec.step
    p = ids.shape[1]
    ref = (
        model(input_ids=seq[:, : p + 1], attention_mask=torch.ones_like(seq[:, : p + 1]))
        .logits[:, -1]
        .float()
    )
    mine = got["logits"]
    top2 = ref.topk(2, dim=-1).values
    return {
        "rel_err": ((mine - ref).norm() / ref.norm()).item(),
        "max_abs_err": (mine - ref).abs().max().item(),
        "argmax_equal": (mine.argmax(-1) == ref.argmax(-1)).float().mean().item(),
        "ref_top2_gap": (top2[:, 0] - top2[:, 1]).tolist(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--seqs", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=100)
    ap.add_argument("--check", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-hf", action="store_true", help="time only our sampler")
    args = ap.parse_args()

    from tunesmith.kernels.decode import FastGenerator, Sampling

    t0 = time.perf_counter()
    model, tok, report = load(args.model)
    res = {
        "load_s": time.perf_counter() - t0,
        "patched": report.replaced,
        "gpu": torch.cuda.get_device_name() if CUDA else "cpu",
    }
    print(f"loaded in {res['load_s']:.1f} s; patched {report.replaced}", flush=True)
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, min(tok.vocab_size, 150000), (1, args.prompt_len), generator=g)
    ids = prompt.repeat(args.seqs, 1).to("cuda" if CUDA else "cpu")
    mask = torch.ones_like(ids)
    n = args.new
    sample_kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)

    def hf(new, **kw):
        return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                              eos_token_id=eos, pad_token_id=pad, use_cache=True, **kw)  # fmt: skip

    fast = FastGenerator(model)
    why = fast.unsupported()
    res["fast_supported"] = why is None
    if why:
        print("fast path unsupported:", why)

    def ours(new, sampling, gen=fast):
        return gen.generate(ids, mask, max_new_tokens=new, sampling=sampling, eos_token_ids=(eos,),
                            pad_token_id=pad, min_new_tokens=new)  # fmt: skip

    with torch.no_grad():
        if not args.skip_hf:
            hf(4, **sample_kw)  # warm-up
            out, s, mem = timed(lambda: hf(n, **sample_kw))
            res["hf"] = {
                "total_s": s,
                "ms_per_token": 1000 * s / n,
                "peak_gib": mem,
                "tokens": out.shape[1] - ids.shape[1],
            }
            print(
                f"(a) transformers generate: {s:.2f} s, {1000 * s / n:.1f} ms/token, peak {mem:.2f} GiB",
                flush=True,
            )
        if why is None:
            ours(n, Sampling())  # warm-up: autotune + graph capture
            runs = [timed(lambda: ours(n, Sampling())) for _ in range(args.repeats)]
            s = statistics.median(r[1] for r in runs)
            mem = max(r[2] for r in runs)
            res["fast"] = {"total_s": s, "ms_per_token": 1000 * s / n, "peak_gib": mem, "runs_s": [r[1] for r in runs],
                           "tokens": runs[0][0].shape[1] - ids.shape[1]}  # fmt: skip
            print(
                f"(b) fast, CUDA graph:      {s:.2f} s, {1000 * s / n:.2f} ms/token, peak {mem:.2f} GiB",
                flush=True,
            )
            eager = FastGenerator(model, cuda_graph=False)
            ours(8, Sampling(), eager)
            out, s, mem = timed(lambda: ours(n, Sampling(), eager))
            res["fast_eager"] = {"total_s": s, "ms_per_token": 1000 * s / n, "peak_gib": mem}
            print(
                f"(c) fast, no graph:        {s:.2f} s, {1000 * s / n:.2f} ms/token, peak {mem:.2f} GiB",
                flush=True,
            )
            sep = FastGenerator(
                model
            )  # (d): the attention prologue as separate ops (norms, rope, cache write)
            sep.unsupported()
            sep._decoder.fused_prologue = False
            ours(n, Sampling(), sep)
            out, s, mem = timed(lambda: ours(n, Sampling(), sep))
            res["fast_separate_prologue"] = {"total_s": s, "ms_per_token": 1000 * s / n, "peak_gib": mem}
            print(f"(d) fast, graph, prologue unfused: {s:.2f} s, {1000 * s / n:.2f} ms/token", flush=True)
            del sep
            if "hf" in res:
                res["speedup"] = res["hf"]["total_s"] / res["fast"]["total_s"]
                print(f"speed-up (a)/(b): {res['speedup']:.1f}x", flush=True)
            try:  # on a CPU smoke run bitsandbytes has repacked its weights after (a): no fast path then
                k = args.check
                ref = hf(k, do_sample=False)[:, -k:]
                got = ours(k, Sampling(do_sample=False))[:, -k:]
                same = (ref == got).float()
                prefix = [int((row.cumprod(0)).sum()) for row in same]
                res["greedy"] = {
                    "tokens": k,
                    "agree_frac": same.mean().item(),
                    "agree_prefix_per_row": prefix,
                }
                print(
                    f"greedy first {k}: {same.mean().item():.3f} agree; equal prefix per row {prefix}",
                    flush=True,
                )
                res["step_logits"] = step_logits(model, eager, ids, mask, eos, pad)
                print("first decode step vs a full forward:", res["step_logits"], flush=True)
            except Exception as exc:
                res["check_error"] = repr(exc)
                print("check failed:", repr(exc), flush=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
