"""The attention backward's own GPU memory at long lengths, one call over all heads against the calls
over KV-head groups (kernels.ops.attention.BACKWARD_BUFFER_BYTES), per fused pair: the peak allocated
over the inputs and gradients, the time, and how far the gradients differ.  8B shapes (32 query heads,
8 KV heads of 128), bf16, causal.  GPU only:

    python3 bench/attention_backward_memory.py --lengths 8192,65536 --out $OUT/attention_backward.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from tunesmith.kernels.ops import attention as attention_module


def measure(tokens: int, backend: SDPBackend, limit: int) -> tuple[dict, list[torch.Tensor]]:
    g = torch.Generator(device="cuda").manual_seed(0)

    def heads(h):  # laid out as the model's: a [B, T, H, D] projection seen as [B, H, T, D]
        return torch.randn(1, tokens, h, 128, device="cuda", dtype=torch.bfloat16, generator=g).transpose(
            1, 2
        )

    q, k, v = (x.requires_grad_() for x in (heads(32), heads(8), heads(8)))
    dout = heads(32)
    attention_module.BACKWARD_BUFFER_BYTES = limit
    with sdpa_kernel(backend):
        out = attention_module.attention(q, k, v, scale=128**-0.5, causal=True)
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out.backward(dout)
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    grads = [x.grad for x in (q, k, v)]
    grad_bytes = sum(x.numel() * x.element_size() for x in grads)
    row = {"tokens": tokens, "backend": backend.name, "limit_MiB": limit >> 20,
           "kv_heads_per_call": attention_module.kv_heads_per_backward(q, k, limit),
           "backward_s": seconds,
           "peak_over_inputs_and_grads_GiB": (torch.cuda.max_memory_allocated() - before - grad_bytes) / 2**30}  # fmt: skip
    return row, [x.float().cpu() for x in grads]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="8192,65536")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = []
    for tokens in (int(x) for x in a.lengths.split(",")):
        for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION):
            try:
                whole, ref = measure(tokens, backend, 1 << 40)
                grouped, got = measure(tokens, backend, 1 << 28)
            except RuntimeError as err:
                rows.append({"tokens": tokens, "backend": backend.name, "error": str(err)[:300]})
                print(rows[-1], flush=True)
                continue
            grouped["max_rel_diff_vs_whole"] = max(
                float((x - y).abs().max() / y.abs().max()) for x, y in zip(got, ref, strict=True)
            )
            rows += [whole, grouped]
            print(whole, "\n", grouped, flush=True)
            torch.cuda.empty_cache()
    with open(a.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
