"""QLoRA training-step benchmark on one GPU: the stock recipe, Tunesmith and Unsloth, side by side.

    python -m bench qlora [--model DIR] [--systems hf,tunesmith,unsloth] [--configs 2x2048,1x8192]
        [--maxctx 16384,32768,65536,131072] [--warmup 3] [--steps 8] [--gpu-cap-gib 24] [--out DIR]
    python -m bench qlora --smoke --out DIR      # CPU, a tiny model, no 4-bit: checks the harness itself

Each system runs in its own process (clean GPU memory) on the same bf16 Llama-3.1-8B-architecture
folder (built once with random weights and an offline tokenizer when DIR has none: nothing is
downloaded), loaded in 4-bit NF4 with double quant and bf16 compute; LoRA r=16, alpha=16, dropout 0 on
q,k,v,o,gate,up,down; AdamW; seeded random token batches, identical across systems; labels = input ids.
  hf         transformers + peft + bitsandbytes: SDPA attention, non-reentrant gradient checkpointing,
             enable_input_require_grads (what TRL's SFTTrainer does for a QLoRA model).  The baseline.
  tunesmith  the same model and adapters, then what Tunesmith's engine does on a GPU:
             tunesmith.kernels.patch_model(model, checkpointing="offload", embeddings_on_cpu=True).
  unsloth    Unsloth's FastLanguageModel (load_in_4bit) + get_peft_model(use_gradient_checkpointing=
             "unsloth"), same LoRA; skipped with a note when unsloth is not installed.
Comparison variants of tunesmith (one optimisation off, same values; kernels/DESIGN.md):
  tunesmith_gpuemb (embedding table stays in VRAM), tunesmith_full (no lean recompute),
  tunesmith_ropecopy (RoPE into new tensors), tunesmith_nostash (no attention stash).
  tunesmith_cpuemb is the old name of tunesmith (kept for the commands in bench/HISTORY.md).
Prints median step time, tokens/s, peak allocated VRAM, step-1 loss per config, the longest batch-1
context that trained, and the ratios against hf.  Writes OUTDIR/<system>.json and OUTDIR/table.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

GiB = 1024**3
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_MODEL = Path.home() / ".cache" / "tunesmith" / "bench" / "llama-3.1-8b-random"
SYSTEMS = ("hf", "tunesmith", "unsloth", "tunesmith_gpuemb", "tunesmith_full", "tunesmith_ropecopy",
           "tunesmith_nostash", "tunesmith_cpuemb")  # fmt: skip
SMOKE_VOCAB = 512  # the tiny model's vocabulary (token ids of its batches stay below it)


def build_model(path: Path, tiny: bool = False) -> None:
    """Llama-3.1-8B architecture (or, tiny, 2 small layers for the CPU smoke run) with random weights
    (std 0.02), saved as safetensors with an offline word-level tokenizer (Unsloth loads one)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}  # fmt: skip
    shape = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, head_dim=128)  # fmt: skip
    if tiny:
        shape = dict(vocab_size=SMOKE_VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16)  # fmt: skip
    vocab = shape["vocab_size"]
    cfg = LlamaConfig(
        **shape, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_parameters=rope,
        tie_word_embeddings=False, bos_token_id=vocab - 256, eos_token_id=vocab - 255, pad_token_id=vocab - 252,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cpu" if tiny else "cuda"):
        model = LlamaForCausalLM(cfg).to(torch.float32 if tiny else torch.bfloat16)
    model.save_pretrained(path)
    build_tokenizer(vocab).save_pretrained(path)


def build_tokenizer(vocab: int):
    """Words t0, t1, ... for the ordinary ids; the last 256 ids are special tokens, as in Llama 3."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {f"t{i}": i for i in range(vocab - 256)}
    words.update({f"<|special_{i}|>": vocab - 256 + i for i in range(256)})
    tok = Tokenizer(models.WordLevel(vocab=words, unk_token="<|special_250|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|special_0|>", eos_token="<|special_1|>",
        pad_token="<|special_4|>", unk_token="<|special_250|>", model_max_length=131072,
    )  # fmt: skip


def load(args):
    """(model, notes) for `args.system`, ready to train."""
    if args.system == "unsloth":
        return load_unsloth(args)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if args.smoke:  # CPU: no 4-bit (bitsandbytes' NF4 needs CUDA), fp32 weights
        model = AutoModelForCausalLM.from_pretrained(
            args.model, dtype=torch.float32, attn_implementation="sdpa"
        )
    else:
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
            p.data = p.data.to(torch.float32 if args.smoke else torch.bfloat16)
    model.enable_input_require_grads()
    notes = {}
    if args.system.startswith("tunesmith"):
        from tunesmith.kernels import patch_model
        from tunesmith.kernels.patch import ComparisonOptions

        comparison = ComparisonOptions(
            lean_recompute=args.system != "tunesmith_full",
            inplace_rope=args.system != "tunesmith_ropecopy",
            stash_attention=args.system != "tunesmith_nostash",
        )
        notes["patch"] = patch_model(
            model, checkpointing=args.checkpointing, keep_layers=args.keep_layers,
            embeddings_on_cpu=args.system != "tunesmith_gpuemb" and not args.smoke, _comparison=comparison,
        ).replaced  # fmt: skip
        if not args.smoke:
            notes["nf4_check_max_abs_err"] = check_nf4(model)
    model.train()
    return model, notes


def load_unsloth(args):
    """Unsloth's own loading and LoRA (its checkpointing), the same adapters as the other systems."""
    import torch
    import unsloth  # noqa: F401  (first: it patches transformers and peft as they are imported)
    from unsloth import FastLanguageModel

    longest = max(
        [int(c.split("x")[1]) for c in args.configs.split(",") if c]
        + [int(x) for x in args.maxctx.split(",") if x]
        + [2048]
    )
    model, _tokenizer = FastLanguageModel.from_pretrained(
        model_name=args.model,
        max_seq_length=longest,
        dtype=torch.bfloat16,
        load_in_4bit=True,
        local_files_only=True,
    )
    model = FastLanguageModel.get_peft_model(
        model, r=16, lora_alpha=16, lora_dropout=0, bias="none", target_modules=TARGETS,
        use_gradient_checkpointing="unsloth", random_state=3407,
    )  # fmt: skip
    FastLanguageModel.for_training(model)
    model.train()
    return model, {"max_seq_length": longest}


def check_nf4(model) -> float:
    """Our NF4 dequant of one real weight against bitsandbytes' CUDA dequant (bf16)."""
    import bitsandbytes.functional as bnbf

    from tunesmith.kernels.patch.projections import _nf4_weight

    base = model.get_base_model().model.layers[0].mlp.down_proj.base_layer
    ref = bnbf.dequantize_4bit(base.weight.data, base.weight.quant_state, quant_type="nf4")
    return float((_nf4_weight(base).dequantize().float() - ref.float()).abs().max())


def batch(b, s, step, smoke: bool = False):
    """The same random token ids for every system (seeded by shape and step)."""
    import torch

    g = torch.Generator().manual_seed(1_000_003 * s + 7919 * b + step)
    ids = torch.randint(0, SMOKE_VOCAB - 256 if smoke else 128000, (b, s), generator=g)
    return ids if smoke else ids.cuda()


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib(kind: str = "allocated") -> float:
    """The CUDA allocator's peak since the last reset (0 on the CPU smoke run)."""
    import torch

    if not torch.cuda.is_available():
        return 0.0
    return (
        torch.cuda.max_memory_allocated() if kind == "allocated" else torch.cuda.max_memory_reserved()
    ) / GiB


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


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
    if args.gpu_cap_gib and torch.cuda.is_available():  # emulate a smaller card
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.gpu_cap_gib * GiB / total))
        res["gpu_cap_gib"] = args.gpu_cap_gib
    try:
        model, res["notes"] = load(args)
    except ImportError as exc:  # Unsloth (or bitsandbytes) not installed: a row that says so
        res["skipped"] = f"not installed ({exc.name or exc})"
        out.write_text(json.dumps(res, indent=1))
        print(args.system, "skipped:", res["skipped"])
        return
    res["mem_after_load_GiB"] = torch.cuda.memory_allocated() / GiB if torch.cuda.is_available() else 0.0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    for cfg in [c for c in args.configs.split(",") if c]:
        b, s = map(int, cfg.split("x"))
        rec = res["configs"][cfg] = {}
        try:
            reset_peak()
            times, losses = [], []
            for i in range(args.warmup + args.steps):
                ids = batch(b, s, i, args.smoke)
                sync()
                t0 = time.perf_counter()
                losses.append(train_step(model, opt, ids))
                sync()
                times.append(time.perf_counter() - t0)
            med = statistics.median(times[args.warmup :])
            rec.update(median_step_s=med, tokens_per_s=b * s / med, step1_loss=losses[0], losses=losses,
                       peak_alloc_GiB=peak_gib(), peak_reserved_GiB=peak_gib("reserved"), step_times_s=times)  # fmt: skip
        except Exception as e:  # an OOM is a result too
            rec["error"] = repr(e)[:500]
        print(
            args.system,
            cfg,
            json.dumps({k: v for k, v in rec.items() if k not in ("losses", "step_times_s")}),
        )
        out.write_text(json.dumps(res, indent=1))
        if (
            args.profile
            and not args.smoke
            and "error" not in rec
            and (args.system.startswith("tunesmith") or cfg == "2x2048")
        ):
            path = Path(args.out) / f"profile_{args.system}_{cfg}.txt"
            rec["profile_top"] = profile_step(model, opt, batch(b, s, 99), path)
            out.write_text(json.dumps(res, indent=1))
    for s in [int(x) for x in args.maxctx.split(",") if x]:
        reset_peak()
        t0 = time.perf_counter()
        try:
            loss = train_step(model, opt, batch(1, s, 0, args.smoke))
            sync()
            r = {"seq": s, "ok": True, "step_s": time.perf_counter() - t0, "loss": loss}
        except Exception as e:
            r = {"seq": s, "ok": False, "error": repr(e)[:300]}
        r["peak_alloc_GiB"] = peak_gib()
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

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke run)"
    v = {"gpu": gpu, "cuda": torch.version.cuda}
    for n in ["torch", "triton", "transformers", "peft", "bitsandbytes", "accelerate", "unsloth"]:
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
    header = []
    if res:
        first = next(iter(res.values()))["versions"]
        header = [", ".join(f"{k} {v}" for k, v in first.items() if v) + "\n"]
    rows = header + ["| system | config | median step s | tok/s | x hf | peak alloc GiB | % of hf | step-1 loss |",
                     "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s, r in res.items():
        if "skipped" in r:
            rows.append(f"| {s} | | {r['skipped']} | | | | | |")
        for cfg, c in r["configs"].items():
            if "error" in c:
                rows.append(f"| {s} | {cfg} | {c['error'][:60]} | | | | | |")
                continue
            b = base.get(cfg, {})
            sp = f"{c['tokens_per_s'] / b['tokens_per_s']:.2f}" if "tokens_per_s" in b else ""
            mem = f"{100 * c['peak_alloc_GiB'] / b['peak_alloc_GiB']:.0f}%" if b.get("peak_alloc_GiB") else ""
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench qlora", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model", default=None, help=f"model folder (built here when empty; default {DEFAULT_MODEL})"
    )
    ap.add_argument(
        "--systems", default="hf,tunesmith,unsloth", help=f"comma-separated, of {', '.join(SYSTEMS)}"
    )
    ap.add_argument("--system", help=argparse.SUPPRESS)  # worker mode
    ap.add_argument("--smoke", action="store_true", help="CPU, a tiny model, 2 steps: checks the harness")
    ap.add_argument(
        "--gpu-cap-gib", type=float, default=0, help="cap each process's GPU memory (emulate a card)"
    )
    ap.add_argument("--configs", default="2x2048,1x8192", help="batch x sequence length, comma-separated")
    ap.add_argument("--maxctx", default="", help="max-context lengths for the last system listed")
    ap.add_argument("--hf-maxctx", default="", help="max-context lengths for hf (default: none)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--checkpointing", default="offload", choices=["offload", "device"])
    ap.add_argument("--keep-layers", type=int, default=0, help="tunesmith: last N layers not checkpointed")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--timeout", type=int, default=400, help="seconds per system")
    ap.add_argument("--out", default="bench-out/qlora", help="folder for the JSON results and table.md")
    args = ap.parse_args(argv)
    if args.smoke:
        args.configs = "1x64" if args.configs == ap.get_default("configs") else args.configs
        args.warmup, args.steps = min(args.warmup, 1), min(args.steps, 2)
        args.model = args.model or str(Path(args.out) / "tiny-model")
    args.model = args.model or str(DEFAULT_MODEL)
    unknown = [s for s in args.systems.split(",") if s and s not in SYSTEMS]
    if unknown:
        ap.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
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
        build_model(Path(args.model), tiny=args.smoke)
        print(f"built {args.model} in {time.perf_counter() - t0:.0f}s", flush=True)
    systems = [s for s in args.systems.split(",") if s]
    for s in systems:
        cmd = [sys.executable, __file__, "--system", s, "--model", args.model, "--configs", args.configs,
               "--maxctx", args.hf_maxctx if s == "hf" else (args.maxctx if s == systems[-1] else ""),
               "--warmup", str(args.warmup),
               "--steps", str(args.steps), "--checkpointing", args.checkpointing, "--out", args.out,
               "--keep-layers", str(args.keep_layers), "--gpu-cap-gib", str(args.gpu_cap_gib)]  # fmt: skip
        cmd += ["--profile"] if args.profile else []
        cmd += ["--smoke"] if args.smoke else []
        # The CPU smoke run needs Triton's interpreter for Tunesmith's kernels.
        env = {**os.environ, "TRITON_INTERPRET": "1"} if args.smoke else None
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(cmd, timeout=args.timeout, env=env).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        print(f"### {s} exit {rc} after {time.perf_counter() - t0:.0f}s", flush=True)
    text = table(Path(args.out), systems)
    (Path(args.out) / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
