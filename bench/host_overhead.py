"""Host-side work of one QLoRA training step per decoder layer, measured on the CPU (no GPU needed).

    python3 bench/host_overhead.py [--model llama,qwen3] [--base nf4|dense] [--layers 4] [--repeat 5]
        [--json OUT.json] [--save-grads OUT.pt]

Builds a small random model of each family (hidden 64, 4 heads / 2 KV heads, head_dim 16), LoRA r=16 on
q, k, v, o, gate, up, down (peft, dropout 0), an NF4 base (bitsandbytes' CPU quantizer, double quant) or a
dense frozen one, SDPA attention, patched with `patch_model(model, checkpointing="offload")` (on the CPU
the stash keeps the input on the device; the recompute and the backward run as on the GPU).  For one
step (forward with labels, backward) it counts, per decoder layer and split by phase
(forward / recompute / backward, the recompute being the re-run of the layer inside its backward):
  * ATen ops dispatched (a TorchDispatchMode; ops run inside a Triton launch are not counted), split
    into ops that launch a device kernel on a GPU and metadata-only ops (views, detach, ...);
  * Triton kernel launches (JITFunction / InterpretedFunction `run`, per kernel);
  * host time per layer: --repeat further steps without the dispatch mode, every Triton launch made
    a no-op (its Python launcher is not timed; values are garbage, control flow is the same; denormals
    flushed), the garbage collector off, CPU time of the process with one intra-op thread, the fastest
    step per phase (the machine may be shared); at these tiny shapes an ATen op computes in a few µs.
Ops outside the decoder layers (embedding, final norm, fused loss, optimizer) are reported once per step.

The GPU estimate at the end uses --aten-us per ATen op (dispatcher + launch) and --triton-us per Triton
launch from Python; both are assumptions, not measurements of this machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PHASES = ("forward", "recompute", "backward")
# ops that only make a new tensor header (no device kernel, no allocation of data)
META = {
    "view", "_unsafe_view", "t", "transpose", "permute", "expand", "slice", "select", "split",
    "split_with_sizes", "detach", "alias", "as_strided", "unsqueeze", "squeeze", "reshape",
    "_reshape_alias", "unbind", "narrow", "chunk", "view_as", "_to_copy_meta", "lift_fresh", "unflatten",
}  # fmt: skip


class _State:
    """Where the step is: the phase, whether inside a decoder layer, inside a Triton launch."""

    def __init__(self) -> None:
        self.phase = "outside"
        self.layer_depth = 0
        self.in_triton = False
        self.triton_s = 0.0
        self.noop_triton = False  # timing runs: launches return at once (host work only, values garbage)
        self.layer_s: Counter = Counter()
        self.aten: dict[tuple[bool, str], Counter] = defaultdict(Counter)
        self.triton: dict[tuple[bool, str], Counter] = defaultdict(Counter)

    def where(self) -> tuple[bool, str]:
        from tunesmith.kernels.memory.offload import recomputing

        phase = self.phase
        if phase == "backward" and recomputing():
            phase = "recompute"
        return self.layer_depth > 0, phase


STATE = _State()
# CPU time of this process, not wall time: a shared machine's other load does not count (with one
# intra-op thread, see measure)
_clock = time.process_time


class OpCounter(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not STATE.in_triton:
            STATE.aten[STATE.where()][func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def _install_hooks(checkpoint_cls) -> None:
    """Counts/times Triton launches; marks the inside of each checkpointed layer (forward and backward)."""
    import triton.runtime.interpreter as interp
    import triton.runtime.jit as jit

    for cls in (jit.JITFunction, interp.InterpretedFunction):
        if getattr(cls.run, "_host_overhead", False):
            continue
        orig = cls.run

        def run(self, *args, _orig=orig, **kwargs):
            if STATE.in_triton:
                return _orig(self, *args, **kwargs)
            name = getattr(getattr(self, "fn", None), "__name__", None) or getattr(self, "__name__", "?")
            STATE.triton[STATE.where()][name] += 1
            if STATE.noop_triton:
                return None
            STATE.in_triton = True
            t0 = _clock()
            try:
                return _orig(self, *args, **kwargs)
            finally:
                STATE.triton_s += _clock() - t0
                STATE.in_triton = False

        run._host_overhead = True
        cls.run = run

    if getattr(checkpoint_cls, "_host_overhead", False):
        return
    checkpoint_cls._host_overhead = True
    fwd, bwd = checkpoint_cls.forward, checkpoint_cls.backward

    def inside(fn):
        def wrapped(*args, **kwargs):
            STATE.layer_depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                STATE.layer_depth -= 1

        return staticmethod(wrapped)

    def timed_fn(fn):
        def run_layer(*args, **kwargs):
            from tunesmith.kernels.memory.offload import recomputing

            t0, tr0 = _clock(), STATE.triton_s
            try:
                return fn(*args, **kwargs)
            finally:
                phase = "recompute" if recomputing() else "forward"
                STATE.layer_s[phase] += (_clock() - t0) - (STATE.triton_s - tr0)

        return run_layer

    def forward(ctx, fn, *args):
        return fwd(ctx, timed_fn(fn), *args)

    def backward(ctx, *douts):
        t0, tr0 = _clock(), STATE.triton_s
        try:
            return bwd(ctx, *douts)
        finally:
            STATE.layer_s["checkpoint_backward"] += (_clock() - t0) - (STATE.triton_s - tr0)

    checkpoint_cls.forward, checkpoint_cls.backward = inside(forward), inside(backward)


def build(model_type: str, base: str, layers: int, tmp: str):
    import peft
    import transformers

    common = dict(
        vocab_size=301, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    cfg = transformers.AutoConfig.for_model(model_type, **common)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").float()
    if base == "nf4":
        path = os.path.join(tmp, model_type)
        model.save_pretrained(path)
        qcfg = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float32,
        )  # fmt: skip
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path, quantization_config=qcfg, dtype=torch.float32, attn_implementation="sdpa"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    lcfg = peft.LoraConfig(
        r=16, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, init_lora_weights=False
    )
    model = peft.get_peft_model(model, lcfg)
    model.config.use_cache = False
    model.train()
    return model


def one_step(model, ids, opt):
    STATE.phase = "forward"
    loss = model(input_ids=ids, labels=ids).loss
    STATE.phase = "backward"
    loss.backward()
    STATE.phase = "outside"
    opt.step()
    opt.zero_grad(set_to_none=True)


def measure(model_type: str, base: str, layers: int, repeat: int, tmp: str) -> dict:
    from tunesmith.kernels import patch_model
    from tunesmith.kernels.memory import offload

    model = build(model_type, base, layers, tmp)
    patch_model(model, checkpointing="offload")
    _install_hooks(offload.OffloadedCheckpointFunction)
    ids = torch.randint(0, 301, (2, 16), generator=torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, foreach=True)
    one_step(model, ids, opt)  # warm-up: Triton's interpreter and caches
    STATE.aten.clear()
    STATE.triton.clear()
    with OpCounter():
        one_step(model, ids, opt)
    aten = {k: dict(v) for k, v in STATE.aten.items()}
    triton_counts = {k: dict(v) for k, v in STATE.triton.items()}

    # timing without the dispatch mode, Triton launches made no-ops and the garbage collector off: the
    # host work of the layers alone (forward / recompute inside the checkpointed fn, backward = the
    # checkpoint's backward minus its recompute)
    STATE.noop_triton = True
    STATE.layer_s.clear()
    step_times = []
    gc.collect()
    gc.disable()
    # the skipped kernels leave garbage in their outputs: denormals would make the CPU matmuls slow
    flush = torch.set_flush_denormal(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        per_step = []
        for _ in range(repeat):
            STATE.layer_s.clear()
            t0 = _clock()
            one_step(model, ids, opt)
            step_times.append(_clock() - t0)
            per_step.append(dict(STATE.layer_s))
    finally:
        gc.enable()
        torch.set_num_threads(threads)
        if flush:
            torch.set_flush_denormal(False)
        STATE.noop_triton = False
    # the fastest step of each phase: the machine may be shared, the slower steps carry other load
    times = {k: min(d.get(k, 0.0) for d in per_step) for k in ("forward", "recompute", "checkpoint_backward")}
    n = layers
    fwd_us = 1e6 * times["forward"] / n
    rec_us = 1e6 * times["recompute"] / n
    bwd_us = 1e6 * times["checkpoint_backward"] / n - rec_us
    return {
        "model": model_type, "base": base, "layers": layers, "aten": aten, "triton": triton_counts,
        "host_us_per_layer": {"forward": fwd_us, "recompute": rec_us, "backward": bwd_us},
        "host_ms_per_step_min": 1e3 * min(step_times),
    }  # fmt: skip


def step_grads(models, base: str, layers: int, tmp: str) -> dict[str, torch.Tensor]:
    """Loss and LoRA gradients of one step, lean and full recompute, per model (fixed seeds)."""
    from tunesmith.kernels import patch_model
    from tunesmith.kernels.patch import ComparisonOptions

    out = {}
    for model_type in models:
        for lean in (True, False):
            model = build(model_type, base, layers, tmp)
            patch_model(model, checkpointing="offload", _comparison=ComparisonOptions(lean_recompute=lean))
            ids = torch.randint(0, 301, (2, 16), generator=torch.Generator().manual_seed(1))
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            out[f"{model_type}/lean={lean}/loss"] = loss.detach()
            for name, p in model.named_parameters():
                if p.requires_grad:
                    out[f"{model_type}/lean={lean}/{name}"] = p.grad.detach().clone()
    return out


def summarise(res: dict, aten_us: float, triton_us: float, gpu_layers: int) -> dict:
    layers = res["layers"]
    rows = {}
    for phase in PHASES:
        ops = Counter(res["aten"].get((True, phase), {}))
        launches = Counter(res["triton"].get((True, phase), {}))
        meta = sum(c for op, c in ops.items() if op in META)
        rows[phase] = {
            "aten": sum(ops.values()) / layers,
            "aten_kernel": (sum(ops.values()) - meta) / layers,
            "aten_meta": meta / layers,
            "triton": sum(launches.values()) / layers,
            "host_us": res["host_us_per_layer"][phase],
            "ops": {op: c / layers for op, c in sorted(ops.items(), key=lambda kv: -kv[1])},
            "kernels": {k: c / layers for k, c in sorted(launches.items())},
        }
    outside_ops = sum(sum(v.values()) for k, v in res["aten"].items() if not k[0])
    outside_tr = sum(sum(v.values()) for k, v in res["triton"].items() if not k[0])
    per_layer_aten = sum(r["aten"] for r in rows.values())
    per_layer_triton = sum(r["triton"] for r in rows.values())
    est_ms = gpu_layers * (per_layer_aten * aten_us + per_layer_triton * triton_us) / 1e3
    return {
        "phases": rows, "per_layer": {"aten": per_layer_aten, "triton": per_layer_triton},
        "per_step": {"aten": gpu_layers * per_layer_aten + outside_ops,
                     "triton": gpu_layers * per_layer_triton + outside_tr,
                     "outside_layers_aten": outside_ops, "outside_layers_triton": outside_tr},
        "gpu_host_ms_estimate_layers": est_ms, "cpu_host_ms_per_step_min": res["host_ms_per_step_min"],
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="llama,qwen3")
    ap.add_argument("--base", default="nf4", choices=["nf4", "dense"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--gpu-layers", type=int, default=32, help="decoder layers of the GPU model (8B: 32)")
    ap.add_argument("--aten-us", type=float, default=5.0)
    ap.add_argument("--triton-us", type=float, default=30.0)
    ap.add_argument("--verbose", action="store_true", help="per-op counts per phase")
    ap.add_argument("--json")
    ap.add_argument(
        "--save-grads",
        metavar="PT",
        help="only save the loss and every LoRA gradient of one step per model (lean and full "
        "recompute) to PT, for a bitwise diff of two code versions (torch.equal on each tensor)",
    )
    args = ap.parse_args(argv)
    out = {}
    if args.save_grads:
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(step_grads(args.model.split(","), args.base, args.layers, tmp), args.save_grads)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for model_type in args.model.split(","):
            res = measure(model_type, args.base, args.layers, args.repeat, tmp)
            s = summarise(res, args.aten_us, args.triton_us, args.gpu_layers)
            out[model_type] = s
            print(f"== {model_type} ({args.base} base, LoRA r=16 on 7 projections, offload checkpointing)")
            print(f"{'per layer':<10} {'aten':>7} {'kernel':>7} {'meta':>6} {'triton':>7} {'host us':>9}")
            for phase, r in s["phases"].items():
                print(
                    f"{phase:<10} {r['aten']:>7.1f} {r['aten_kernel']:>7.1f} {r['aten_meta']:>6.1f} "
                    f"{r['triton']:>7.1f} {r['host_us']:>9.0f}"
                )
                if args.verbose:
                    print("   ", ", ".join(f"{op} {c:g}" for op, c in r["ops"].items()))
                    print("   ", ", ".join(f"{k} {c:g}" for k, c in r["kernels"].items()))
            pl, ps = s["per_layer"], s["per_step"]
            print(f"per layer, all phases: {pl['aten']:.1f} ATen ops, {pl['triton']:.1f} Triton launches")
            print(
                f"per step at {args.gpu_layers} layers: {ps['aten']:.0f} ATen ops, {ps['triton']:.0f} Triton "
                f"launches (outside the layers: {ps['outside_layers_aten']}, {ps['outside_layers_triton']})"
            )
            print(
                f"estimated GPU-host time in the layers: {s['gpu_host_ms_estimate_layers']:.1f} ms/step "
                f"({args.aten_us:g} us/ATen op, {args.triton_us:g} us/Triton launch); this CPU, "
                f"host time of a step (Triton launches skipped): {s['cpu_host_ms_per_step_min']:.1f} ms (fastest of --repeat)"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
