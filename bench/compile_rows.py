"""The NF4 rows kernel compiled for an H100 (sm_90) on a machine without a GPU: what each form costs in
registers, spills and layout conversions, before any device time is spent (issue 15).

    python3 bench/compile_rows.py [--rows 4] [--block-k 128] [--warps 4] [--stages 3] [--ttgir FILE]

Compiles `kernels.decode.nf4_rows._rows_kernel` with a decode step's argument types (bf16 x, double-
quantized NF4, fp32 LoRA factors, split-K, the down projection's SwiGLU input and residual when --glu) for
target cuda:90 with Triton's own compiler and ptxas, and prints ptxas' register and spill counts, the TTGIR's layout conversions (most are free register
renamings: the PTX's shared loads and stores say which are not), and the K loop's instructions per
iteration and per weight byte (--by-line: per source line).  The kernel is bound by instructions per
byte at decode shapes (about 52 at 4 rows), so that count is what a change must lower.  Times come only
from the GPU (bench/sweep_rows.py); this says where an iteration's work goes.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "0"  # compile for the GPU even where the tests' interpreter is set

import argparse
import re
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

POINTERS = {
    "X": "*bf16", "CODE": "*fp32", "BIAS": "*bf16", "ADD": "*bf16", "Y": "*bf16", "XA": "*fp32", "LB": "*fp32",
    "LSCALE": "*bf16", "RES": "*bf16", "PART": "*fp32", "COUNT": "*i32",
}  # fmt: skip
for i in range(3):
    POINTERS.update({f"P{i}": "*u8", f"A{i}": "*u8", f"B{i}": "*fp32", f"D{i}": "*fp32"})
FLOATS = {"o0", "o1", "o2"}


def gate_up_values(m: int) -> dict:
    """The integer arguments of Qwen3-4B's gate/up launch at m rows (rows_matmul's), for the launcher's
    divisibility specialization."""
    n, k = 9728, 2560
    return dict(M=m, K=k, R=32, N0=n, N1=n, N2=0, b1=n // 16, b2=2**30, c1=n, c2=2 * n, NT=2 * n,
                k_per_split=1536, sxm=k, sam=0, sym=2 * n, sxa=32, slb=32, sres=0)  # fmt: skip


def compile_form(kernel, consts: dict, warps: int, stages: int, int_values: dict):
    signature = {}
    for name in kernel.arg_names:
        if name in consts:
            signature[name] = "constexpr"
        elif name in POINTERS:
            signature[name] = POINTERS[name]
        elif name in FLOATS:
            signature[name] = "fp32"
        else:
            signature[name] = "i32"
    # what the launcher specializes on: 16-byte aligned pointers, integers divisible by 16
    attrs = {
        (i,): [["tt.divisibility", 16]]
        for i, name in enumerate(kernel.arg_names)
        if name not in consts and (name in POINTERS or int_values.get(name, 1) % 16 == 0)
    }
    src = ASTSource(kernel, signature, constexprs=consts, attrs=attrs)
    return triton.compile(
        src, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps, "num_stages": stages}
    )


def ptxas_report(ptx: str) -> str:
    # the newer of Triton's two ptxas builds reads the PTX version Triton writes
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas-blackwell"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k.ptx"
        path.write_text(ptx)
        done = subprocess.run([str(ptxas), "-v", "--gpu-name", "sm_90a", str(path), "-o", str(Path(tmp) / "k.o")],
                              capture_output=True, text=True)  # fmt: skip
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()]
    return (
        " ".join(line for line in lines if "registers" in line or "spill" in line) or " ".join(lines)[-300:]
    )


def loop_body(ptx: str) -> list[str]:
    """The PTX lines of the kernel's K loop (LLVM marks its header "Inner Loop Header"; it ends at the
    first branch after it, the back edge)."""
    lines = ptx.splitlines()
    start = next((i for i, line in enumerate(lines) if "Inner Loop Header" in line), None)
    if start is None:
        return []
    end = next(
        (i for i in range(start + 1, len(lines)) if re.search(r"\bbra(?:\.uni)?\s+\$L", lines[i])), len(lines)
    )
    return lines[start + 1 : end + 1]


def loop_report(ptx: str, bytes_per_thread: float, by_line: bool) -> str:
    """Instructions per iteration of the K loop and per weight byte, the most frequent opcodes, and
    with by_line how many come from each source line of nf4_rows.py."""
    ops: Counter = Counter()
    per_line: Counter = Counter()
    where = None
    for raw in loop_body(ptx):
        line = raw.strip()
        if line.startswith(".loc"):
            found = re.search(r"nf4_rows\.py:(\d+)", line)
            where = int(found.group(1)) if found else None
            continue
        if not line or line.startswith(("//", "$", "{", "}")):
            continue
        parts = line.split()
        ops[(parts[1] if parts[0].startswith("@") else parts[0]).rstrip(";")] += 1
        per_line[where] += 1
    total = sum(ops.values())
    if not total:
        return "no loop found"
    out = [f"K loop: {total} instructions per iteration, {total / bytes_per_thread:.1f} per weight byte; "
           + ", ".join(f"{op} {n}" for op, n in ops.most_common(14))]  # fmt: skip
    if by_line:
        source = (
            Path(__file__)
            .resolve()
            .parents[1]
            .joinpath("kernels/decode/nf4_rows.py")
            .read_text()
            .splitlines()
        )
        for line_no, n in per_line.most_common():
            text = source[line_no - 1].strip()[:90] if line_no else "(no line)"
            out.append(f"  {n:4d}  line {line_no}: {text}")
    return "\n".join(out)


def main() -> int:
    from tunesmith.kernels.decode.nf4_rows import _rows_kernel

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--block-n", type=int, default=16)
    ap.add_argument("--block-k", type=int, default=128)
    ap.add_argument("--warps", type=int, default=4)
    ap.add_argument("--stages", type=int, default=3)
    ap.add_argument("--gather", action="store_true")
    ap.add_argument("--glu", action="store_true", help="the down projection: SwiGLU input and residual")
    ap.add_argument("--ttgir", help="write the TTGIR here")
    ap.add_argument("--by-line", action="store_true", help="the loop's instructions per source line")
    args = ap.parse_args()
    consts = dict(
        BS=64, BS2=256, NESTED=True, HAS_BIAS=False, HAS_ADD=False, HAS_LORA=True, HAS_SCALE=False,
        HAS_RES=args.glu, GLU=args.glu, SPLIT=2, BLOCK_M=triton.next_power_of_2(args.rows), BLOCK_N=args.block_n,
        BLOCK_K=args.block_k, BLOCK_R=64, GATHER=args.gather,
    )  # fmt: skip
    compiled = compile_form(_rows_kernel, consts, args.warps, args.stages, gate_up_values(args.rows))
    ttgir = compiled.asm["ttgir"]
    if args.ttgir:
        Path(args.ttgir).write_text(ttgir)
    loop = ttgir[ttgir.find("scf.for") :]
    loop = loop[: loop.find("scf.yield")]
    ptx = compiled.asm["ptx"]
    shared_ops = len(re.findall(r"\b(?:st|ld)\.shared", ptx))
    barriers = len(re.findall(r"\bbar\.sync|\bbarrier\.sync", ptx))
    print(
        f"rows {args.rows} BLOCK_N {args.block_n} BLOCK_K {args.block_k} warps {args.warps} stages {args.stages} "
        f"gather {args.gather} glu {args.glu}: convert_layout in the loop {len(re.findall('convert_layout', loop))}, "
        f"in all {len(re.findall('convert_layout', ttgir))}; shared {compiled.metadata.shared} B, "
        f"{shared_ops} shared loads/stores and {barriers} barriers in the PTX; "
        f"{ptxas_report(compiled.asm['ptx'])}\n"
        f"{loop_report(ptx, args.block_n * args.block_k / 2 / (32 * args.warps), args.by_line)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
