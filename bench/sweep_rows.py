"""The NF4 rows kernel's forms, timed alone on the GPU at decode shapes (issue 15): which to ship.

    python3 bench/sweep_rows.py --out R.jsonl [--rows 4,16] [--groups gate_up,qkv,o,down] [--budget-s 240]

For each projection group of a Qwen3-4B layer (q/k/v 4096+1024+1024 x 2560, o 2560 x 4096, gate/up
2 x 9728 x 2560, down 2560 x 9728 with the SwiGLU input and the residual) at each decode batch size,
with a rank-16 LoRA term per weight as the decode step runs it, times:
  - every form of the rows kernel in FORMS (BLOCK_N, BLOCK_K, warps, stages, GATHER),
    bypassing the autotuner, and the autotuner's own choice;
  - the wide-batch path: the group dequantized in one launch + one cuBLAS GEMM + the adapter term.
Each time is GPU time of a CUDA graph holding one call on each of COPIES distinct weight sets (more
than the 50 MB L2 holds, as in a decode step, where every layer's weights stream through once),
replayed; the line also gives the bandwidth of the 4-bit weight read.  One JSON line per timing,
printed and appended to --out; stops starting new forms after --budget-s seconds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
import triton

GROUPS = {  # name: (output rows of each weight, K, glu+residual)
    "qkv": ((4096, 1024, 1024), 2560, False),
    "o": ((2560,), 4096, False),
    "gate_up": ((9728, 9728), 2560, False),
    "down": ((2560,), 9728, True),
}
COPIES = 4
TILES = [(128, 4, 3), (256, 4, 2), (512, 8, 2), (256, 8, 3)]  # BLOCK_K, warps, stages
FORMS = [
    dict(BLOCK_N=bn, BLOCK_K=bk, num_warps=w, num_stages=st, GATHER=g, PAIR=p, ACC2D=a)
    for bn, (bk, w, st), g, p, a in itertools.product(
        (16, 32), TILES, (True, False), (False, True), (False, True)
    )
]


def nf4(n: int, k: int):
    import bitsandbytes.functional as bnbf

    from tunesmith.kernels.ops.nf4 import NF4Weight

    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5
    packed, st = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    return NF4Weight(
        packed=packed.view(torch.uint8).reshape(-1), absmax=st.absmax, code=st.code.float(), blocksize=64,
        shape=(n, k), dtype=torch.bfloat16, absmax2=st.state2.absmax, code2=st.state2.code,
        blocksize2=st.state2.blocksize, offset=float(st.offset),
    )  # fmt: skip


def graph_us(fns, reps: int = 20) -> float:
    """GPU microseconds per call: a CUDA graph of every fn in `fns` once, replayed `reps` times."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for fn in fns:
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for fn in fns:
            fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return 1000 * start.elapsed_time(end) / reps / len(fns)


def sweep_case(name: str, m: int, sets: list, record, over_budget) -> None:
    """Every form at one group and batch size (module docstring)."""
    from tunesmith.kernels.decode.nf4_rows import rows_matmul
    from tunesmith.kernels.ops.nf4 import dequantize_nf4_stacked

    ns, k, glu = GROUPS[name]
    nt, r = sum(ns), 16 * len(ns)
    wbytes = sum(w.packed.numel() + w.absmax.numel() + w.absmax2.numel() * 4 for w in sets[0])
    x = torch.randn(m, 2 * k if glu else k, device="cuda", dtype=torch.bfloat16)
    res = torch.randn(m, nt, device="cuda", dtype=torch.bfloat16) if glu else None
    xa = torch.randn(m, r, device="cuda", dtype=torch.float32)
    lb = torch.randn(nt, r, device="cuda", dtype=torch.float32) / 8
    y = torch.empty(m, nt, device="cuda", dtype=torch.bfloat16)

    def rows(form, ws):
        return lambda: rows_matmul(x, ws, None, None, y, (xa, lb, None), res, glu, config=form)

    def dense(ws):
        buf = torch.empty(nt, k, device="cuda", dtype=torch.bfloat16)

        def call():
            h = torch.nn.functional.silu(x[:, :k]) * x[:, k:] if glu else x
            if len(ws) == 1:
                ws[0].dequantize(buf)
            else:
                dequantize_nf4_stacked(ws, buf)
            z = torch.nn.functional.linear(h, buf) + (xa @ lb.t()).to(h.dtype)
            return z if res is None else res + z

        return call

    base = {"group": name, "rows": m, "weight_MB": wbytes / 1e6}
    ref = dense(sets[0])().float()
    for label, make in (("autotuned", lambda ws: rows(None, ws)), ("dense", dense)):
        us = graph_us([make(ws) for ws in sets])
        record({**base, "form": label, "us": us, "GBps": wbytes / us / 1e3})
    for form in FORMS:
        if over_budget():
            record({**base, "stopped": "budget"})
            return
        if triton.next_power_of_2(m) * form["BLOCK_N"] * form["BLOCK_K"] // 2 > 32768:
            continue  # the [M, N, K/2] accumulator alone would be over 256 registers a thread
        try:
            us = graph_us([rows(dict(form), ws) for ws in sets])
            rows(dict(form), sets[0])()
            diff = float((y.float() - ref).abs().max() / ref.abs().max())
        except Exception as exc:  # e.g. out of shared memory / registers for a form
            record({**base, "form": form, "error": str(exc)[:200]})
            continue
        record({**base, "form": form, "us": us, "GBps": wbytes / us / 1e3, "rel_diff_vs_dense": diff})


def summary(path: str) -> None:
    """Per group and batch size: the autotuner's time, the dense path's, the fastest form, and the
    fastest with each switch on and off (what each switch is worth)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    cases = sorted({(r["group"], r["rows"]) for r in rows})
    for case in cases:
        got = [r for r in rows if (r["group"], r["rows"]) == case and "us" in r]
        named = {r["form"]: r["us"] for r in got if isinstance(r["form"], str)}
        forms = [r for r in got if isinstance(r["form"], dict)]
        line = f"{case[0]:8s} {case[1]:3d} rows: autotuned {named.get('autotuned', 0):7.1f} us, dense {named.get('dense', 0):7.1f} us"
        if forms:
            best = min(forms, key=lambda r: r["us"])
            line += f", best form {best['us']:7.1f} us ({best['GBps']:.0f} GB/s) {best['form']}"
            for key in ("BLOCK_N", "GATHER", "BLOCK_K"):
                by = {}
                for r in forms:
                    by[r["form"][key]] = min(by.get(r["form"][key], 1e9), r["us"])
                line += f"\n      {key}: " + ", ".join(f"{v}: {t:.1f}" for v, t in sorted(by.items()))
        print(line)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--summary", action="store_true", help="only summarise --out")
    ap.add_argument("--rows", default="4,16")
    ap.add_argument("--groups", default="gate_up,qkv,down,o")
    ap.add_argument("--budget-s", type=float, default=240)
    args = ap.parse_args()
    if args.summary:
        summary(args.out)
        return 0
    t_start = time.monotonic()
    torch.manual_seed(0)
    with open(args.out, "a") as out:

        def record(row: dict) -> None:
            row["gpu"] = torch.cuda.get_device_name()
            line = json.dumps(row)
            print(line, flush=True)
            out.write(line + "\n")
            out.flush()

        for name in args.groups.split(","):
            ns, k, _ = GROUPS[name]
            sets = [[nf4(n, k) for n in ns] for _ in range(COPIES)]
            for m in (int(v) for v in args.rows.split(",")):
                sweep_case(name, m, sets, record, lambda: time.monotonic() - t_start > args.budget_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
