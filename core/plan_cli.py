"""`tunesmith plan`: the longest context a card can train, from the model's config alone.

Prints core.context_plan's answer for a model (folder, GGUF, cached hub id or the demo) on this machine's
GPU and RAM, or on a card and RAM given with --vram-gib / --ram-gib (so a user can ask about a card they
do not have).  Loads no weights.
"""

from __future__ import annotations

import argparse

from tunesmith.core.config import METHOD_CHOICES

PLANNED_METHODS = ("sft", "dpo", "orpo")


def add_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="the longest context (max length) a GPU can train for a model, from its config alone",
        description="The longest max length that trains at batch size 1 with LoRA on a 4-bit model "
        "(QLoRA) with Tunesmith's kernels, within the GPU's memory and the host memory they may pin. "
        "Reads only the model's config (config.json or the GGUF's metadata): no weights are loaded.",
    )
    p.add_argument("--model", default="demo", help="model folder, .gguf file, hub id or 'demo' (default)")
    p.add_argument(
        "--method",
        default="sft",
        choices=PLANNED_METHODS,
        help="training method: " + "; ".join(METHOD_CHOICES[m] for m in PLANNED_METHODS) + " (default sft)",
    )
    p.add_argument(
        "--vram-gib", type=float, help="the GPU's memory in GiB (default: what is free on this machine's GPU)"
    )
    p.add_argument("--ram-gib", type=float, help="the machine's RAM in GiB (default: this machine's)")
    p.add_argument(
        "--precision",
        default="4bit",
        choices=("4bit", "8bit", "bf16", "fp16"),
        help="how the base weights are stored (default 4bit: QLoRA)",
    )
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default 16)")
    p.set_defaults(handler=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    from tunesmith.core.context_plan import longest_context
    from tunesmith.core.models.model_shape import shape_of

    for name in ("vram_gib", "ram_gib"):
        given = getattr(args, name)
        if given is not None and not 0 < given <= 4096:
            raise ValueError(f"--{name.replace('_', '-')} must be a size in GiB above 0, not {given:g}")
    shape = shape_of(args.model)
    vram, ram = args.vram_gib, args.ram_gib
    if vram is None or ram is None:
        from tunesmith.core.hardware import detect_hardware

        hardware = detect_hardware()
        ram = ram if ram is not None else hardware.ram_total_gb
        if vram is None:
            if not hardware.has_gpu:
                print(
                    "This machine has no NVIDIA GPU, so there is no card to plan for: training runs on the "
                    "CPU, limited by time rather than memory. Ask about a card with --vram-gib N "
                    "(and --ram-gib N)."
                )
                return 0
            vram = hardware.vram_free_gb  # what a run will have: the desktop's share is not
    plan = longest_context(shape, args.method, vram, ram, precision=args.precision, lora_r=args.lora_r)
    print(f"{args.model}: {shape.layers} layers, hidden {shape.hidden}, vocabulary {shape.vocab:,}")
    print(plan.words())
    if not plan.covered:
        return 0
    parts = ", ".join(f"{name} {gib:.2f}" for name, gib in plan.parts.items())
    print(f"GPU memory needed whatever the length: {plan.fixed_gib:.1f} GiB ({parts})")
    print(f"host memory the kernels may pin: {plan.host_budget_gib:.1f} GiB of {ram:g} GiB RAM")
    return 0
