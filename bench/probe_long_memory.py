"""Where one long-context training step's GPU memory goes: an 8B-shaped Llama (hidden 4096, MLP 14,336,
32/8 heads of 128) cut to a few layers, bf16 bases with LoRA r16 on all 7 projections, patched as the
engine patches (offloaded checkpoints, embeddings in host memory).  For each length it prints the peak
allocated over what the model holds, per token (in "H": one hidden-size bf16 row, 8 KiB); for each
length it replays torch's allocator trace to the moment of the peak and lists what was alive then, by
the line of our code (or transformers') that allocated it; a length that runs out of memory lists what was
alive when the failing request came, and the probe stops there.  --gpu-cap-gib with --held-gib (the GPU
filled to what a full model holds) emulates a smaller card.  Issue 16's per-token arithmetic
(core/context_plan.py) is checked against this.  GPU only:

    python3 bench/probe_long_memory.py --layers 4 --lengths 16384,65536 --out $OUT/probe.json
    python3 bench/probe_long_memory.py --lengths 65536 --gpu-cap-gib 12 --held-gib 4.4 --out $OUT/probe.json
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import torch

H_BYTES = 4096 * 2  # one token's hidden-size bf16 row


def build(layers: int):
    import peft
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
        rope_theta=500000.0, tie_word_embeddings=False,
    )  # fmt: skip
    cfg._attn_implementation = "sdpa"
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(
            cfg, dtype=torch.bfloat16, attn_implementation="sdpa"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    lcfg = peft.LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])  # fmt: skip
    model = peft.get_peft_model(model, lcfg)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.bfloat16)
    model.enable_input_require_grads()
    from tunesmith.kernels import patch_model

    patch_model(model, checkpointing="offload", embeddings_on_cpu=True)
    model.train()
    return model


def step(model, tokens: int) -> float:
    ids = torch.randint(0, 128000, (1, tokens), device="cuda")
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    model.zero_grad(set_to_none=True)
    return float(loss)


def our_frame(frames) -> str:
    """The innermost frame in tunesmith's or transformers' code (where the tensor was asked for)."""
    for f in frames:
        name = f.get("filename", "")
        if "tunesmith" in name or "/kernels/" in name or "transformers/models" in name or "/peft/" in name:
            return f"{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]}:{f.get('line')} {f.get('name')}"
    return "(other)"


def live_at_peak(snapshot, base: int):
    """Replays the allocator trace: the blocks alive when allocated bytes peaked."""
    live: dict[int, tuple[int, str]] = {}
    total = best = 0
    best_live: dict[int, tuple[int, str]] = {}
    oom = None
    for ev in snapshot["device_traces"][0]:
        act = ev["action"]
        if act == "oom":  # an out-of-memory run: what was alive when the failing request came
            oom = {"asked_GiB": ev["size"] / 2**30, "at": our_frame(ev.get("frames", []))}
            best, best_live = total, dict(live)
            break
        if act == "alloc":
            live[ev["addr"]] = (ev["size"], our_frame(ev.get("frames", [])))
            total += ev["size"]
            if total > best:
                best, best_live = total, dict(live)
        elif act in ("free_requested",) and ev["addr"] in live:
            total -= live.pop(ev["addr"])[0]
    by_site = collections.Counter()
    for size, site in best_live.values():
        by_site[site] += size
    largest = sorted(best_live.values(), reverse=True)[:8]
    return best, by_site, oom, [(round(size / 2**30, 3), site) for size, site in largest]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--lengths", default="16384,65536")
    ap.add_argument("--out", required=True)
    ap.add_argument("--gpu-cap-gib", type=float, default=0.0, help="cap the process as a smaller card")
    ap.add_argument(
        "--held-gib",
        type=float,
        default=0.0,
        help="fill the GPU up to this much before the steps (the rest of a full model's weights)",
    )
    a = ap.parse_args()
    if a.gpu_cap_gib:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(a.gpu_cap_gib * 2**30 / total)
    model = build(a.layers)
    step(model, 512)
    torch.cuda.synchronize()
    ballast = None
    if a.held_gib * 2**30 > torch.cuda.memory_allocated():
        room = int(a.held_gib * 2**30 - torch.cuda.memory_allocated())
        ballast = torch.empty(room, dtype=torch.uint8, device="cuda")
    held = torch.cuda.memory_allocated()
    result = {"layers": a.layers, "held_GiB": held / 2**30, "lengths": [],
              "ballast_GiB": 0 if ballast is None else ballast.numel() / 2**30}  # fmt: skip
    lengths = [int(x) for x in a.lengths.split(",")]
    for tokens in lengths:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.memory._record_memory_history(max_entries=200000)
        t0 = time.perf_counter()
        try:
            loss = step(model, tokens)
        except torch.OutOfMemoryError as err:
            loss = f"out of memory: {str(err)[:160]}"
            model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        row = {"tokens": tokens, "loss": loss, "step_s": time.perf_counter() - t0,
               "peak_over_held_GiB": (torch.cuda.max_memory_allocated() - held) / 2**30}  # fmt: skip
        row["per_token_H"] = (torch.cuda.max_memory_allocated() - held) / tokens / H_BYTES
        snap = torch.cuda.memory._snapshot()
        torch.cuda.memory._record_memory_history(enabled=None)
        peak, sites, oom, largest = live_at_peak(snap, held)
        row["trace_peak_GiB"] = peak / 2**30
        row["oom"] = oom
        row["largest_alive_GiB"] = largest
        row["alive_at_peak_H"] = {s: round(b / tokens / H_BYTES, 3) for s, b in sites.most_common(40)}
        result["lengths"].append(row)
        print(json.dumps(row, indent=1), flush=True)
        if oom is not None:
            break
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
