"""Where a Tunesmith QLoRA step leaves the GPU idle: one profiled step with CPU and CUDA activity.

    python3 bench/diagnose_step.py --model DIR [--config 2x2048] [--system tunesmith] --out DIR

Loads like bench_qlora.py (same model, adapters and patch), runs warm-up steps, times steps with CUDA
synchronised, then profiles one step (CPU + CUDA, Python stacks) and reports from its trace:
- the step's wall time against the busy time of the compute stream (kernels, merged);
- every idle gap on that stream longer than --gap-us, attributed to the CPU op and Python frames that
  launched the kernel ending the gap (what the GPU was waiting for);
- CUDA runtime calls that block the host (synchronize, host alloc, malloc/free, blocking copies) with
  their total time.
Writes DIR/diagnose_<system>_<config>.json and prints a short summary.
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_qlora  # noqa: E402

BLOCKING = (
    "Synchronize",
    "HostAlloc",
    "MallocHost",
    "cudaMalloc",
    "cudaFree",
    "cuMem",
    "cudaMemcpy",
    "Query",
)


def analyse(trace: dict, gap_us: float) -> dict:
    events = trace["traceEvents"]
    kernels = [e for e in events if e.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy") and "dur" in e]
    streams = Counter(k["tid"] for k in kernels if k.get("cat") == "kernel")
    compute = streams.most_common(1)[0][0]
    on_stream = sorted((k for k in kernels if k["tid"] == compute), key=lambda k: k["ts"])
    runtime = {
        e["args"]["correlation"]: e
        for e in events
        if e.get("cat") == "cuda_runtime" and "correlation" in e.get("args", {})
    }
    cpu_ops = sorted(
        (e for e in events if e.get("cat") in ("cpu_op", "python_function") and "dur" in e),
        key=lambda e: e["ts"],
    )

    starts = [e["ts"] for e in cpu_ops]

    def enclosing(ts):
        """The innermost cpu op and the Python frames around a host timestamp (recent events only)."""
        i = bisect.bisect_right(starts, ts)
        ops = [e for e in cpu_ops[max(0, i - 4000) : i] if ts <= e["ts"] + e["dur"]]
        py = [e["name"] for e in ops if e.get("cat") == "python_function"]
        aten = [e["name"] for e in ops if e.get("cat") == "cpu_op"]
        return (aten[-1] if aten else "?"), [p for p in py if "site-packages/torch" not in p][-4:]

    busy, gaps, end = 0.0, [], None
    for k in on_stream:
        start, stop = k["ts"], k["ts"] + k["dur"]
        if end is not None and start - end > gap_us:
            rt = runtime.get(k.get("args", {}).get("correlation"))
            op, frames = enclosing(rt["ts"]) if rt else ("?", [])
            gaps.append({"gap_us": start - end, "next_kernel": k["name"][:60], "launch_op": op, "py": frames})
        busy += max(0.0, stop - max(start, end or start))
        end = stop if end is None else max(end, stop)
    span = on_stream[-1]["ts"] + on_stream[-1]["dur"] - on_stream[0]["ts"]
    blocking = defaultdict(lambda: [0, 0.0])
    for e in events:
        if e.get("cat") == "cuda_runtime" and any(b in e["name"] for b in BLOCKING):
            blocking[e["name"]][0] += 1
            blocking[e["name"]][1] += e.get("dur", 0)
    by_site = defaultdict(lambda: [0, 0.0])
    for g in gaps:
        key = g["launch_op"] + " <- " + " | ".join(g["py"][-2:])
        by_site[key][0] += 1
        by_site[key][1] += g["gap_us"]
    return {
        "compute_stream_span_ms": span / 1e3,
        "compute_stream_busy_ms": busy / 1e3,
        "idle_ms": (span - busy) / 1e3,
        "gaps_over_threshold": len(gaps),
        "gap_ms_over_threshold": sum(g["gap_us"] for g in gaps) / 1e3,
        "gaps_by_launch_site": sorted(
            ([k, n, round(t / 1e3, 2)] for k, (n, t) in by_site.items()), key=lambda r: -r[2]
        )[:25],
        "largest_gaps": sorted(gaps, key=lambda g: -g["gap_us"])[:15],
        "blocking_runtime_calls": {
            k: {"calls": n, "ms": round(t / 1e3, 2)} for k, (n, t) in blocking.items()
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--system", default="tunesmith")
    ap.add_argument("--config", default="2x2048")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--gap-us", type=float, default=50.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    args.checkpointing, args.keep_layers = "offload", 0

    import torch
    from torch.profiler import ProfilerActivity, profile

    model, notes = bench_qlora.load(args)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    b, s = (int(x) for x in args.config.split("x"))
    for i in range(args.warmup):
        bench_qlora.train_step(model, opt, bench_qlora.batch(b, s, i))
    times = []
    for i in range(args.steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        bench_qlora.train_step(model, opt, bench_qlora.batch(b, s, 100 + i))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=True) as prof:
        torch.cuda.synchronize()
        t = time.perf_counter()
        bench_qlora.train_step(model, opt, bench_qlora.batch(b, s, 999))
        torch.cuda.synchronize()
        profiled_s = time.perf_counter() - t
    trace_path = Path(tempfile.mkdtemp()) / "trace.json"
    prof.export_chrome_trace(str(trace_path))
    report = {"system": args.system, "config": args.config, "median_step_s": statistics.median(times),
              "steps_s": times, "profiled_step_s": profiled_s, "patch": notes}  # fmt: skip
    report.update(analyse(json.loads(trace_path.read_text()), args.gap_us))
    cpu_table = prof.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"diagnose_{args.system}_{args.config}.json").write_text(json.dumps(report, indent=1))
    (out / f"cpu_{args.system}_{args.config}.txt").write_text(cpu_table)
    print(
        json.dumps({k: v for k, v in report.items() if k not in ("largest_gaps", "patch")}, indent=1)[:6000]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
