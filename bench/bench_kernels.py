"""Per-kernel timings on the GPU: each Tunesmith op against the plain PyTorch (or bitsandbytes) way,
at Llama-3.1-8B sizes in bf16, forward + backward where there is one.

    python bench/bench_kernels.py [--tokens 4096]

Medians from triton.testing.do_bench (CUDA events), fresh random inputs, and the peak memory of one
call for the cross-entropy.  Prints one table; no file output.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from tunesmith.kernels import fused_linear_cross_entropy, rms_norm, rope, swiglu
from tunesmith.kernels.ops.nf4 import NF4Weight, dequantize_nf4

DT = torch.bfloat16


def fwd_bwd(fn, inputs, grad):
    def run():
        for t in inputs:
            t.grad = None
        fn(*inputs).backward(grad)

    return run


def ref_rms(x, w):
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype)


def ref_rope(q, k, cos, sin):
    def rot(x):
        x1, x2 = x.chunk(2, -1)
        return torch.cat((-x2, x1), -1)

    c, s = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * c + rot(q) * s, k * c + rot(k) * s


def cases(n: int):
    dev = "cuda"
    x = torch.randn(n, 4096, device=dev, dtype=DT, requires_grad=True)
    w = torch.randn(4096, device=dev, dtype=DT)
    dy = torch.randn_like(x)
    yield (
        "rms_norm fwd+bwd [N, 4096]",
        fwd_bwd(lambda a: rms_norm(a, w, 1e-5), [x], dy),
        fwd_bwd(lambda a: ref_rms(a, w), [x], dy),
    )
    t = n // 2
    q = torch.randn(2, t, 32, 128, device=dev, dtype=DT).transpose(1, 2).requires_grad_()
    k = torch.randn(2, t, 8, 128, device=dev, dtype=DT).transpose(1, 2).requires_grad_()
    cos, sin = torch.randn(1, t, 128, device=dev, dtype=DT), torch.randn(1, t, 128, device=dev, dtype=DT)

    def ours_rope(a, b):
        qo, ko = rope(a, b, cos, sin)
        return qo.sum() + ko.sum()

    def torch_rope(a, b):
        qo, ko = ref_rope(a, b, cos, sin)
        return qo.sum() + ko.sum()

    one = torch.ones((), device=dev)
    yield (
        "rope q+k fwd+bwd [2, N/2, 32+8, 128]",
        fwd_bwd(ours_rope, [q, k], one),
        fwd_bwd(torch_rope, [q, k], one),
    )
    g = torch.randn(n, 14336, device=dev, dtype=DT, requires_grad=True)
    u = torch.randn(n, 14336, device=dev, dtype=DT, requires_grad=True)
    dh = torch.randn_like(g)
    yield (
        "swiglu fwd+bwd [N, 14336]",
        fwd_bwd(swiglu, [g, u], dh),
        fwd_bwd(lambda a, b: F.silu(a) * b, [g, u], dh),
    )
    h = torch.randn(n, 4096, device=dev, dtype=DT, requires_grad=True)
    wv = (0.02 * torch.randn(128256, 4096, device=dev, dtype=DT)).requires_grad_(False)
    y = torch.randint(0, 128256, (n,), device=dev)
    yield (
        "linear + cross-entropy fwd+bwd, V=128256",
        fwd_bwd(lambda a: fused_linear_cross_entropy(a, wv, y), [h], one),
        fwd_bwd(lambda a: F.cross_entropy((a @ wv.t()).float(), y), [h], one),
    )
    try:
        import bitsandbytes.functional as bnbf
    except ImportError:
        return
    wq = torch.randn(14336, 4096, device=dev, dtype=DT)
    packed, st = bnbf.quantize_4bit(wq, quant_type="nf4", compress_statistics=True)
    nf4 = NF4Weight(packed.view(-1), st.absmax, st.code, st.blocksize, tuple(st.shape), DT, st.state2.absmax,
                    st.state2.code, st.state2.blocksize, float(st.offset))  # fmt: skip
    yield "NF4 dequant 14336 x 4096", lambda: dequantize_nf4(nf4), lambda: bnbf.dequantize_4bit(packed, st)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=4096)
    args = ap.parse_args()
    print(f"{torch.cuda.get_device_name(0)}, {args.tokens} tokens, bf16")
    print("| op | tunesmith ms | reference ms | speed-up | tunesmith peak MiB | reference peak MiB |")
    print("|---|---|---|---|---|---|")
    for name, ours, ref in cases(args.tokens):
        row = []
        for fn in (ours, ref):
            fn()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
            row.append((do_bench(fn, warmup=25, rep=100, return_mode="median"), peak))
        (t0, m0), (t1, m1) = row
        print(f"| {name} | {t0:.3f} | {t1:.3f} | {t1 / t0:.2f}x | {m0:.0f} | {m1:.0f} |", flush=True)


if __name__ == "__main__":
    main()
