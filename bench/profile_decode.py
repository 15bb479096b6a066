"""Where the fast sampler's token step goes, on the GPU machine (issue 15's profile).

    python3 bench/profile_decode.py --model DIR --out R.json [--seqs 4,16] [--prompt-len 100] [--new 256]

Loads the model as bench_rollout.py does (NF4 + LoRA r=16 on all 7 projections, our kernels patched),
then prints and records:
  - ms per token step of the CUDA-graph sampler (the number GRPO pays), and of the eager step;
  - a torch.profiler table of the eager step's CUDA kernels (sum over --profile-steps steps);
  - each distinct NF4 weight shape of layer 0 timed alone at the decode batch: our few-row kernel
    against dequantize + cuBLAS, with the bandwidth each reaches (bytes of the 4-bit weight and its
    absmax read once) and the autotuner's chosen tile;
  - the LoRA term of each projection group alone (the extra small matmuls per group).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rollout import load  # noqa: E402


def cuda_us(fn, iters: int = 200) -> float:
    """Median-free mean over `iters` back-to-back calls, in microseconds, by CUDA events."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return 1000 * start.elapsed_time(end) / iters


def weight_bytes(w) -> int:
    n = w.packed.numel() * w.packed.element_size() + w.absmax.numel() * w.absmax.element_size()
    if w.nested:
        n += w.absmax2.numel() * w.absmax2.element_size()
    return n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seqs", default="4", help="decode batch sizes, comma-separated (one model load)")
    ap.add_argument("--prompt-len", type=int, default=100)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--profile-steps", type=int, default=8)
    ap.add_argument("--dense-from", type=int, default=0, help="decoder.DENSE_FROM_ROWS (0: as shipped)")
    ap.add_argument("--skip-shapes", action="store_true", help="only the token step and its kernel profile")
    args = ap.parse_args()
    import tunesmith.kernels.decode.decoder as decoder

    if args.dense_from:
        decoder.DENSE_FROM_ROWS = args.dense_from
    print(f"form: DENSE_FROM_ROWS={decoder.DENSE_FROM_ROWS}", flush=True)

    model, tok, _ = load(args.model)
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0
    every = {}
    for seqs in (int(s) for s in args.seqs.split(",")):
        print(f"## {seqs} sequences", flush=True)
        every[seqs] = profile(model, eos, seqs, args, Path(args.out).with_suffix(f".{seqs}.profile.txt"))
    Path(args.out).write_text(json.dumps(every, indent=1))
    return 0


def profile(model, eos, seqs, args, table_path: Path) -> dict:
    from tunesmith.kernels.decode import FastGenerator, Sampling
    from tunesmith.kernels.decode import nf4_matmul as nm

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 150000, (1, args.prompt_len), generator=g).repeat(seqs, 1).cuda()
    mask = torch.ones_like(ids)
    res: dict = {"gpu": torch.cuda.get_device_name(), "seqs": seqs}

    def gen_with(fast, n):
        return fast.generate(ids, mask, max_new_tokens=n, sampling=Sampling(), eos_token_ids=(eos,),
                             pad_token_id=eos, min_new_tokens=n)  # fmt: skip

    with torch.no_grad():
        fast = FastGenerator(model)
        t0 = time.perf_counter()
        gen_with(fast, 16)
        torch.cuda.synchronize()
        res["first_call_s"] = time.perf_counter() - t0
        for label, fg in (("graph", fast), ("eager", FastGenerator(model, cuda_graph=False))):
            gen_with(fg, 8)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            gen_with(fg, args.new)
            torch.cuda.synchronize()
            res[f"{label}_ms_per_token"] = 1000 * (time.perf_counter() - t0) / args.new
            print(f"{label}: {res[f'{label}_ms_per_token']:.2f} ms per token step", flush=True)

        eager = FastGenerator(model, cuda_graph=False)
        gen_with(eager, 8)
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            gen_with(eager, args.profile_steps)
            torch.cuda.synchronize()
        avg = prof.key_averages()
        for key in ("self_device_time_total", "self_cuda_time_total"):
            try:
                table = avg.table(sort_by=key, row_limit=30)
                break
            except Exception:
                table = ""
        print(table, flush=True)
        table_path.write_text(table)
        kern = 0.0
        for e in avg:
            t = getattr(e, "self_device_time_total", None)
            if t is None:
                t = getattr(e, "self_cuda_time_total", 0.0)
            kern += t
        res["eager_kernel_ms_per_step"] = kern / 1000 / args.profile_steps
        print(f"eager: CUDA kernels {res['eager_kernel_ms_per_step']:.2f} ms per step", flush=True)

        if args.skip_shapes:
            return res
        dec = fast._decoder
        layer = dec.layers[0]
        shapes = []
        for name, projs in (
            ("qkv", layer.qkv),
            ("o", layer.o),
            ("gate_up", layer.gate_up),
            ("down", layer.down),
        ):
            for w in projs.weights:
                k = w.shape[1]
                x = torch.randn(seqs, k, device="cuda", dtype=torch.bfloat16)
                ours = cuda_us(lambda x=x, w=w: nm.nf4_matmul(x, w))
                dense = cuda_us(lambda x=x, w=w: torch.nn.functional.linear(x, w.dequantize().to(x.dtype)))
                nbytes = weight_bytes(w)
                best = getattr(nm._nf4_mm_aligned_tuned, "best_config", None)
                row = {"group": name, "shape": list(w.shape), "ours_us": ours, "dequant_cublas_us": dense,
                       "ours_GBps": nbytes / ours / 1e3, "best": str(best)}  # fmt: skip
                shapes.append(row)
                print(json.dumps(row), flush=True)
            xg = torch.randn(seqs, projs.weights[0].shape[1], device="cuda", dtype=torch.bfloat16)
            projs.refresh()
            whole = cuda_us(lambda p=projs, x=xg: p(x))
            print(f"group {name}: whole Projs call {whole:.1f} us", flush=True)
            shapes.append({"group": name, "whole_projs_us": whole})
        res["shapes"] = shapes
        lm = dec.head_w
        xh = torch.randn(seqs, lm.shape[1], device="cuda", dtype=lm.dtype)
        res["head_us"] = cuda_us(lambda: torch.nn.functional.linear(xh, lm))
        print(f"head {tuple(lm.shape)}: {res['head_us']:.1f} us", flush=True)
    return res


if __name__ == "__main__":
    sys.exit(main())
