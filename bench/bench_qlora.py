"""QLoRA training-step benchmark on one GPU: baseline (transformers + peft + bitsandbytes) vs Tunesmith.

    python bench/bench_qlora.py --model DIR [--systems hf,tunesmith] [--configs 2x2048,1x8192]
        [--maxctx 16384,32768,65536,131072] [--warmup 2] [--steps 6] [--profile] --out OUTDIR

Each system runs in its own process (clean GPU memory) on the same bf16 Llama-3.1-8B-architecture
folder (built here with random weights when DIR has none), loaded in 4-bit NF4 with double quant and
bf16 compute; LoRA r=16, alpha=16, dropout 0 on q,k,v,o,gate,up,down, adapters cast to bf16; AdamW;
fresh random token batches per step, identical across systems; labels = input ids.
  hf         SDPA attention, non-reentrant gradient checkpointing, enable_input_require_grads
             (what TRL's SFTTrainer does for a QLoRA model).
  tunesmith  the same model and adapters, then tunesmith.kernels.patch_model(checkpointing=...).
  tunesmith_cpuemb  tunesmith with patch_model(embeddings_on_cpu=True): the frozen input embedding
             table (1 GiB) lives in host memory.
  tunesmith_full  tunesmith with patch_model(lean_recompute=False): the checkpointed layers are
             recomputed in full (down projection included, every weight dequantized again in the
             backward) — the comparison point for the lean recompute, same values.
  tunesmith_ropecopy  tunesmith with patch_model(inplace_rope=False): RoPE into new tensors.
  tunesmith_nostash  tunesmith with patch_model(stash_attention=False): transformers' SDPA function,
             its forward run again in each layer's recompute (no attention output kept in host memory).
Prints median step time, tokens/s, peak allocated VRAM, step-1 loss per config, the longest batch-1
context that trained, and the ratios against hf.  Writes OUTDIR/<system>.json and OUTDIR/table.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

GiB = 1024**3
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_model(path: Path) -> None:
    """Llama-3.1-8B architecture, random bf16 weights (std 0.02), saved as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}  # fmt: skip
    cfg = LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
        rms_norm_eps=1e-5, rope_parameters=rope, tie_word_embeddings=False, bos_token_id=128000,
        eos_token_id=128001, pad_token_id=128004,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(path)


def load(args):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(
        args.model,
        quantization_config=q,
        dtype=torch.bfloat16,
        attn_implementation="sdpa",
        device_map={"": 0},
    )
    model.config.use_cache = False
    for p in model.parameters():
        p.requires_grad_(False)
    if args.system == "hf":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none", target_modules=TARGETS,
                      task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, lora)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.bfloat16)
    model.enable_input_require_grads()
    notes = {}
    if args.system.startswith("tunesmith"):
        from tunesmith.kernels import patch_model

        cpuemb = args.system == "tunesmith_cpuemb"
        notes["patch"] = patch_model(
            model, checkpointing=args.checkpointing, keep_layers=args.keep_layers, embeddings_on_cpu=cpuemb,
            lean_recompute=args.system != "tunesmith_full", inplace_rope=args.system != "tunesmith_ropecopy",
            stash_attention=args.system != "tunesmith_nostash",
        ).replaced  # fmt: skip
        notes["nf4_check_max_abs_err"] = check_nf4(model)
    model.train()
    return model, notes


def check_nf4(model) -> float:
    """Our NF4 dequant of one real weight against bitsandbytes' CUDA dequant (bf16)."""
    import bitsandbytes.functional as bnbf

    from tunesmith.kernels.patch.projections import _nf4_weight

    base = model.get_base_model().model.layers[0].mlp.down_proj.base_layer
    ref = bnbf.dequantize_4bit(base.weight.data, base.weight.quant_state, quant_type="nf4")
    return float((_nf4_weight(base).dequantize().float() - ref.float()).abs().max())


def batch(b, s, step):
    import torch

    g = torch.Generator().manual_seed(1_000_003 * s + 7919 * b + step)
    return torch.randint(0, 128000, (b, s), generator=g).cuda()


def train_step(model, opt, ids):
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def worker(args) -> None:
    import torch

    res = {"system": args.system, "configs": {}, "maxctx": [], "versions": versions()}
    out = Path(args.out) / f"{args.system}.json"
    model, res["notes"] = load(args)
    res["mem_after_load_GiB"] = torch.cuda.memory_allocated() / GiB
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    for cfg in [c for c in args.configs.split(",") if c]:
        b, s = map(int, cfg.split("x"))
        rec = res["configs"][cfg] = {}
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            times, losses = [], []
            for i in range(args.warmup + args.steps):
                ids = batch(b, s, i)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                losses.append(train_step(model, opt, ids))
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            med = statistics.median(times[args.warmup :])
            rec.update(median_step_s=med, tokens_per_s=b * s / med, step1_loss=losses[0], losses=losses,
                       peak_alloc_GiB=torch.cuda.max_memory_allocated() / GiB,
                       peak_reserved_GiB=torch.cuda.max_memory_reserved() / GiB, step_times_s=times)  # fmt: skip
        except Exception as e:  # an OOM is a result too
            rec["error"] = repr(e)[:500]
        print(
            args.system,
            cfg,
            json.dumps({k: v for k, v in rec.items() if k not in ("losses", "step_times_s")}),
        )
        out.write_text(json.dumps(res, indent=1))
        if args.profile and "error" not in rec and (args.system.startswith("tunesmith") or cfg == "2x2048"):
            path = Path(args.out) / f"profile_{args.system}_{cfg}.txt"
            rec["profile_top"] = profile_step(model, opt, batch(b, s, 99), path)
            out.write_text(json.dumps(res, indent=1))
    for s in [int(x) for x in args.maxctx.split(",") if x]:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            loss = train_step(model, opt, batch(1, s, 0))
            torch.cuda.synchronize()
            r = {"seq": s, "ok": True, "step_s": time.perf_counter() - t0, "loss": loss}
        except Exception as e:
            r = {"seq": s, "ok": False, "error": repr(e)[:300]}
        r["peak_alloc_GiB"] = torch.cuda.max_memory_allocated() / GiB
        res["maxctx"].append(r)
        print(args.system, "maxctx", json.dumps(r))
        out.write_text(json.dumps(res, indent=1))
        if not r["ok"]:
            break


def profile_step(model, opt, ids, path: Path) -> list:
    """One profiled step: the top CUDA kernels by total time, written to `path`."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        train_step(model, opt, ids)
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70)
    path.write_text(table)
    return [line[:200] for line in table.splitlines()[:36]]


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    v = {"gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    for n in ["torch", "triton", "transformers", "peft", "bitsandbytes", "accelerate"]:
        try:
            v[n] = version(n)
        except PackageNotFoundError:
            v[n] = None
    return v


def table(outdir: Path, systems: list[str]) -> str:
    res = {
        s: json.loads((outdir / f"{s}.json").read_text()) for s in systems if (outdir / f"{s}.json").exists()
    }
    base = res.get("hf", {}).get("configs", {})
    rows = ["| system | config | median step s | tok/s | x hf | peak alloc GiB | % of hf | step-1 loss |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s, r in res.items():
        for cfg, c in r["configs"].items():
            if "error" in c:
                rows.append(f"| {s} | {cfg} | {c['error'][:60]} | | | | | |")
                continue
            b = base.get(cfg, {})
            sp = f"{c['tokens_per_s'] / b['tokens_per_s']:.2f}" if "tokens_per_s" in b else ""
            mem = f"{100 * c['peak_alloc_GiB'] / b['peak_alloc_GiB']:.0f}%" if "peak_alloc_GiB" in b else ""
            rows.append(f"| {s} | {cfg} | {c['median_step_s']:.3f} | {c['tokens_per_s']:,.0f} | {sp} | "
                        f"{c['peak_alloc_GiB']:.2f} | {mem} | {c['step1_loss']:.4f} |")  # fmt: skip
    for s, r in res.items():
        ok = [m for m in r["maxctx"] if m["ok"]]
        if r["maxctx"]:
            best = max(ok, key=lambda m: m["seq"]) if ok else None
            rows.append(f"\n{s} longest batch-1 context: " + (
                f"{best['seq']:,} ({best['peak_alloc_GiB']:.1f} GiB, {best['step_s']:.1f} s/step)" if best else "none"
            ) + "; tried " + ", ".join(f"{m['seq']}:{'ok' if m['ok'] else 'fail'}" for m in r["maxctx"]))  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--systems", default="hf,tunesmith")
    ap.add_argument("--system", help=argparse.SUPPRESS)  # worker mode
    ap.add_argument("--configs", default="2x2048,1x8192")
    ap.add_argument("--maxctx", default="", help="max-context lengths for the last system listed")
    ap.add_argument("--hf-maxctx", default="", help="max-context lengths for hf (default: none)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--checkpointing", default="offload", choices=["offload", "device"])
    ap.add_argument("--keep-layers", type=int, default=0, help="tunesmith: last N layers not checkpointed")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--timeout", type=int, default=400, help="seconds per system")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.system:
        try:
            worker(args)
        except Exception:
            traceback.print_exc()
            sys.exit(3)
        return
    if not (Path(args.model) / "config.json").exists():
        t0 = time.perf_counter()
        build_model(Path(args.model))
        print(f"built {args.model} in {time.perf_counter() - t0:.0f}s", flush=True)
    systems = [s for s in args.systems.split(",") if s]
    for s in systems:
        cmd = [sys.executable, __file__, "--system", s, "--model", args.model, "--configs", args.configs,
               "--maxctx", args.hf_maxctx if s == "hf" else (args.maxctx if s == systems[-1] else ""),
               "--warmup", str(args.warmup),
               "--steps", str(args.steps), "--checkpointing", args.checkpointing, "--out", args.out,
               "--keep-layers", str(args.keep_layers)]  # fmt: skip
        cmd += ["--profile"] if args.profile else []
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(cmd, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        print(f"### {s} exit {rc} after {time.perf_counter() - t0:.0f}s", flush=True)
    text = table(Path(args.out), systems)
    (Path(args.out) / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
