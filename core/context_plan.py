"""The longest context a card can train: the same memory arithmetic as the kernels, before anything loads.

For (Q)LoRA with Tunesmith's kernels (the engine on an NVIDIA GPU: core.models.loading patches them in
with every layer checkpointed, its input offloaded to pinned host memory; kernels/DESIGN.md), one
training step at batch 1 x T tokens needs

    GPU(T)  = fixed + T x per_token_gpu
    host(T) = embedding table + layer inputs + stash        (pinned, within the host budget)

- fixed: the frozen base weights (NF4 with double quantization: 0.5 + 1/64 + 4/(64*256) bytes a
  weight; 16-bit embedding tables, the untied input table in host memory), the LoRA adapters with their
  fp32 gradients and AdamW moments (16 bytes a parameter), one layer's dequantized 16-bit weights held
  through its backward, one 2^26-logit chunk of the fused loss, and the CUDA context.
- per_token_gpu, in 16-bit elements, the working set of one layer's backward (the last layer's first):
  what the whole layer holds - 3 x hidden (the gradient arriving from above, the norm's output, the
  residual), 2 x hidden (this layer's input and the next one's, prefetched from host memory), and either
  2 x stash (this layer's stash and the next one's, prefetched: attention output, log-sum-exp, rotated q,
  k, v and the residual sum) when the pass keeps a stash, or the attention's q, k, v and output formed
  again by the recompute when it keeps none - and on top the larger of the two backward phases that run
  one after the other: the MLP's (4 x intermediate: the gate and up outputs, act(g) x u and its
  gradient; past MLP_TILE_BYTES of [gate | up] the kernels' MLP runs over sequence tiles,
  kernels.ops.lora_mlp, so this covers one tile's rows) and the attention's (ATTENTION_BACKWARD x the
  query width: the gradients of q, k, v and the output; and the SDPA kernels' own buffers, 4 query
  widths a token up to ATTENTION_BUFFER_BYTES, past which kernels.ops.attention runs the backward over
  groups of KV heads).
- host: kernels.memory.host_budget's order: the input table first, then each layer's input (a layer
  whose input does not fit stays in VRAM, counted in GPU(T)), then the stash item by item within
  min(what is left, a quarter of RAM); every block counted as kernels.memory.pinned_pool pins it (its
  exact size rounded up to 2 MiB, small ones to a power of two: `pinned_bytes`).  The budget is what
  kernels.memory.host_budget.default_host_budget leaves: RAM less max(4 GiB, a fifth of RAM).

BENCHMARKS.md's measurements (8B QLoRA, batch 1) and issue 16's table check these within 15%
(tests/core/test_context_plan.py).  Qt-free and torch-free: it reads shapes only (core.vram.ModelShape).
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tunesmith.core.vram import ModelShape

GIB = 2**30
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit weight, 8-bit absmax per 64, fp32 absmax per 256 blocks
WEIGHT_BYTES = {"4bit": NF4_BYTES, "8bit": 1.0 + 4 / 64, "bf16": 2.0, "fp16": 2.0}
LORA_STATE_BYTES = 4 + 4 + 8  # fp32 adapter weight and gradient, two AdamW moments
LOSS_CHUNK_LOGITS = 1 << 26  # kernels.ops.cross_entropy's row chunk, 16-bit, its gradient in place
CUDA_CONTEXT_GIB = 0.6  # the CUDA context and cuBLAS workspaces (core.vram.CUDA_OVERHEAD_GB)
ALLOCATOR_SLACK = 0.05  # the caching allocator's fragmentation: core.vram's fit check keeps the same 5%
RUNTIME_HOST_GIB = 1.5  # the process beside its pinned memory (Python, torch, CUDA's host side)
STASH_GPU_SHARE = 0.25  # kernels.memory.host_budget.STASH_GPU_SHARE
# Query widths per token the attention's backward holds at its peak beside the SDPA kernels' own buffers
# (the gradients of q, k, v and the output), measured on an H100 (BENCHMARKS.md, issue 16).
ATTENTION_BACKWARD = 3
# The kernels' own buffers: dq's fp32 accumulator and GQA's expanded dk, dv (4 query widths a token), of
# one group of KV heads at most ATTENTION_BUFFER_BYTES (kernels.ops.attention.BACKWARD_BUFFER_BYTES).
ATTENTION_BUFFERS = 4
ATTENTION_BUFFER_BYTES = 1 << 28
MLP_TILE_BYTES = 1 << 29  # kernels.ops.lora_mlp.MLP_TILE_BYTES: [gate | up] past this runs over row tiles
ELEMENT = 2  # bytes of a 16-bit activation (bf16 or fp16 compute)
STEP = 1024  # lengths are offered in multiples of this
MAX_TOKENS = 1 << 21  # the search stops here (2,097,152 tokens)
# Rows a step's forward passes hold at once, per dataset row: preference methods run chosen and rejected.
ROWS_PER_EXAMPLE = {"sft": 1, "dpo": 2, "orpo": 2}


@dataclass(frozen=True)
class MemoryAt:
    """What one step at `tokens` tokens per forward pass needs."""

    tokens: int
    gpu_gib: float
    host_pinned_gib: float
    host_layers: int  # layers whose input goes to host memory
    stash_gib: float

    @property
    def host_gib(self) -> float:
        """The process's host memory: what it pins and the runtime beside it."""
        return self.host_pinned_gib + RUNTIME_HOST_GIB


@dataclass(frozen=True)
class ContextPlan:
    """The longest max length that trains on a card of `vram_gib` with `ram_gib` of RAM."""

    tokens: int  # the longest max length (0: not even STEP tokens fit)
    method: str
    vram_gib: float
    ram_gib: float
    host_budget_gib: float
    fixed_gib: float  # the GPU memory needed whatever the length
    at_longest: MemoryAt | None
    limit: str  # what stops a longer one: "GPU memory" or "host memory"
    parts: dict[str, float] = field(default_factory=dict)  # the fixed part, GiB by item
    model_type: str | None = None
    covered: bool = True  # Tunesmith's kernels patch this family (else the plan does not apply)
    trained_context: int | None = None  # the length the model was trained for, when its config says

    @property
    def offered(self) -> int:
        """The length to offer as a max length: what fits, but no more than the model was trained for
        (beyond it the position encoding is extrapolated and the model's answers degrade)."""
        if self.trained_context is None:
            return self.tokens
        return min(self.tokens, self.trained_context)

    def words(self) -> str:
        """One line for people: 'Longest that fits on this card: 61,440 tokens (...)'."""
        if not self.covered:
            return (
                f"No plan for this model: Tunesmith's kernels do not cover {self.model_type or 'its'} models, "
                "so it trains with stock transformers, whose activations stay on the GPU; the plan is "
                "worked out for the kernels' families (kernels/patch/families.py)."
            )
        if self.tokens <= 0 or self.at_longest is None:
            return (
                f"Does not fit on this card: the model alone needs about {self.fixed_gib:.1f} GiB of the "
                f"{self.vram_gib:g} GiB of GPU memory, before any tokens."
            )
        m = self.at_longest
        line = (
            f"Longest that fits on this card: {self.tokens:,} tokens ({self.method.upper()}, batch size 1; "
            f"about {m.gpu_gib:.1f} of {self.vram_gib:g} GiB GPU memory and {m.host_gib:.1f} GiB of "
            f"{self.ram_gib:g} GiB RAM; longer needs more {self.limit})"
        )
        if self.offered < self.tokens:
            line += (
                f". The model was trained on up to {self.offered:,} tokens, so that is the length offered: "
                "longer rows need a model made for longer context"
            )
        return line


@cache
def kernel_families() -> frozenset[str]:
    """The model types Tunesmith's kernels patch: the keys of kernels/patch/families.py's FAMILIES, read
    from its source (importing it through its package would import torch and triton)."""
    found = importlib.util.find_spec("tunesmith.kernels")
    folders = list(found.submodule_search_locations or []) if found else []
    if not folders:
        return frozenset()
    tree = ast.parse((Path(folders[0]) / "patch" / "families.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "FAMILIES" for t in targets):
                return frozenset(str(k.value) for k in node.value.keys if isinstance(k, ast.Constant))
    return frozenset()


PIN_GRANULE = 2 * 2**20  # kernels.memory.host_budget.GRANULE
PIN_SMALLEST = 4096  # kernels.memory.host_budget.SMALLEST


def pinned_bytes(nbytes: int) -> int:
    """As kernels.memory.host_budget.pinned_bytes (imported there with torch): a multiple of 2 MiB from
    2 MiB up, below it the next power of two, at least 4 KiB."""
    if nbytes <= 0:
        return 0
    if nbytes >= PIN_GRANULE:
        return -(-int(nbytes) // PIN_GRANULE) * PIN_GRANULE
    return max(PIN_SMALLEST, 1 << (int(nbytes) - 1).bit_length())


def host_budget(ram_gib: float) -> float:
    """The pinned bytes the kernels may hold on a machine with `ram_gib` of RAM and nothing else running
    (kernels.memory.host_budget.default_host_budget: available less max(4 GiB, a fifth))."""
    ram = ram_gib * GIB
    return max(0.0, ram - max(4 * GIB, ram / 5))


def stash_items(shape: ModelShape) -> list[int]:
    """Bytes per token of each item a layer stashes: output, log-sum-exp (fp32), rotated q, k, v, and
    the residual sum (kernels/DESIGN.md's stash)."""
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    return [q * ELEMENT, shape.heads * 4, q * ELEMENT, kv * ELEMENT, kv * ELEMENT, shape.hidden * ELEMENT]


def fixed_gpu_parts(
    shape: ModelShape, precision: str = "4bit", lora_r: int = 16, targets: tuple[str, ...] | None = None
) -> dict[str, float]:
    """The GPU memory (GiB) a step needs whatever its length."""
    from tunesmith.core.config import DEFAULT_TARGET_MODULES

    table = shape.vocab * shape.hidden
    tables = 1 if shape.tied_embeddings else 2
    linear = shape.parameters - tables * table
    # the untied input table lives in host memory; the output head (or the tied table) stays on the GPU
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    layer_dense = shape.hidden * (q + 2 * kv) + q * shape.hidden + 2 * shape.hidden * shape.intermediate
    lora = shape.lora_parameters(lora_r, list(targets or DEFAULT_TARGET_MODULES))
    return {
        "weights": linear * WEIGHT_BYTES[precision] / GIB,
        "output head": table * ELEMENT / GIB,
        "adapter + optimizer": lora * LORA_STATE_BYTES / GIB,
        "one layer's weights, dequantized": (layer_dense * ELEMENT / GIB) if precision != "bf16" else 0.0,
        "loss chunk": LOSS_CHUNK_LOGITS * ELEMENT / GIB,
        "CUDA context": CUDA_CONTEXT_GIB,
    }


def mlp_tile_rows(tokens: int, intermediate: int) -> int:
    """As kernels.ops.lora_mlp.tile_rows for 16-bit activations: the rows the MLP block holds at once."""
    per_row = 2 * intermediate * ELEMENT
    if tokens * per_row <= MLP_TILE_BYTES:
        return max(1, tokens)
    rows = max(1, MLP_TILE_BYTES // per_row)
    return rows // 128 * 128 if rows >= 128 else rows


def backward_gpu_bytes(shape: ModelShape, stash: bool, tokens: int) -> int:
    """GPU bytes of one layer's backward at `tokens` tokens (module docstring), with or without the stash."""
    tile_share = mlp_tile_rows(tokens, shape.intermediate) / tokens if tokens else 1.0
    mlp = 4 * shape.intermediate * tile_share * ELEMENT * tokens
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    kernel_buffers = min(ATTENTION_BUFFERS * q * ELEMENT * tokens, ATTENTION_BUFFER_BYTES)
    attention_phase = ATTENTION_BACKWARD * q * ELEMENT * tokens + kernel_buffers
    held = 2 * sum(stash_items(shape)) if stash else (2 * q + 2 * kv) * ELEMENT
    phase = max(mlp, attention_phase)  # the MLP's backward, then the attention's: never both
    return int(phase + tokens * (5 * shape.hidden * ELEMENT + held))


def memory_at(
    shape: ModelShape,
    tokens: int,
    budget_bytes: float,
    stash_cap_bytes: float,
    fixed_gib: float,
    table_on_host: bool = True,
    gpu_free_bytes: float | None = None,
) -> MemoryAt:
    """GPU and pinned host memory of one step at `tokens` tokens per forward pass (module docstring);
    `gpu_free_bytes`: the GPU memory free when the pass starts, where known (the stash gives way when two
    layers of it would take more than STASH_GPU_SHARE of it, as kernels.memory.host_budget decides)."""
    table = pinned_bytes(shape.vocab * shape.hidden * ELEMENT) if table_on_host else 0
    available = budget_bytes - table if table <= budget_bytes else budget_bytes
    pinned = table if table <= budget_bytes else 0
    one_input = tokens * shape.hidden * ELEMENT
    host_layers = min(shape.layers, int(available // pinned_bytes(one_input)))
    pinned += host_layers * pinned_bytes(one_input)
    room = min(available - host_layers * pinned_bytes(one_input), stash_cap_bytes)
    layer_stash = tokens * sum(stash_items(shape))
    if gpu_free_bytes is not None and 2 * layer_stash > STASH_GPU_SHARE * gpu_free_bytes:
        room = 0
    costs = [pinned_bytes(item * tokens) for item in stash_items(shape)]
    stash = 0
    for _layer in range(shape.layers):  # item by item, an item that does not fit is recomputed instead
        if stash + sum(costs) <= room:
            stash += sum(costs)
            continue
        for cost in costs:
            if stash + cost <= room:
                stash += cost
        if room - stash < min(costs):
            break
    device_inputs = (shape.layers - host_layers) * one_input
    gpu = fixed_gib * GIB + backward_gpu_bytes(shape, stash > 0, tokens) + device_inputs
    return MemoryAt(tokens, gpu / GIB, (pinned + stash) / GIB, host_layers, stash / GIB)


def activations_gib(
    shape: ModelShape, tokens: int, vram_gib: float, ram_gib: float, fixed_gib: float
) -> float:
    """The GPU memory (GiB) of a step's activations at `tokens` tokens per forward pass on a card of
    `vram_gib` with `ram_gib` of RAM: what longest_context counts beyond the fixed part (the stash kept
    only where the host budget and the GPU have room for it, as the kernels decide)."""
    need = memory_at(
        shape,
        tokens,
        host_budget(ram_gib),
        ram_gib * GIB / 4,
        fixed_gib,
        not shape.tied_embeddings,
        vram_gib * GIB - fixed_gib * GIB,
    )
    return need.gpu_gib - fixed_gib


def longest_context(
    shape: ModelShape,
    method: str = "sft",
    vram_gib: float = 24.0,
    ram_gib: float = 64.0,
    precision: str = "4bit",
    lora_r: int = 16,
    targets: tuple[str, ...] | None = None,
    host_budget_gib: float | None = None,
    cuda_context: bool = True,
) -> ContextPlan:
    """The longest max length (a multiple of STEP) whose step at batch size 1 fits `vram_gib` of GPU
    memory and the host budget of `ram_gib` of RAM (`host_budget_gib` sets the budget outright, as
    TUNESMITH_HOST_BUDGET_GIB does).  cuda_context False: `vram_gib` is a cap on the allocator (as
    torch.cuda.set_per_process_memory_fraction measures), the context aside."""
    if method not in ROWS_PER_EXAMPLE:
        raise ValueError(
            f"the longest context is planned for SFT, DPO and ORPO, not {method!r} (GRPO's length is its "
            "prompt and completion lengths)"
        )
    if precision not in WEIGHT_BYTES:
        raise ValueError(
            f"precision must be one of {', '.join(WEIGHT_BYTES)} (LoRA on the GPU), not {precision!r}"
        )
    parts = fixed_gpu_parts(shape, precision, lora_r, targets)
    if not cuda_context:
        parts.pop("CUDA context")
    fixed = sum(parts.values())
    budget = host_budget_gib * GIB if host_budget_gib is not None else host_budget(ram_gib)
    cap = ram_gib * GIB / 4  # kernels.memory.host_budget.default_stash_cap
    usable = vram_gib * GIB * (1 - ALLOCATOR_SLACK)
    free = vram_gib * GIB - fixed * GIB  # at a pass's start: the card less what the model holds
    rows = ROWS_PER_EXAMPLE[method]

    def need_at(tokens: int) -> MemoryAt:
        return memory_at(shape, tokens, budget, cap, fixed, not shape.tied_embeddings, free)

    best: MemoryAt | None = None
    for length in range(STEP, MAX_TOKENS + 1, STEP):  # not monotonic: a full host budget drops the stash
        need = need_at(length * rows)
        if need.gpu_gib * GIB <= usable:
            best = need
    limit = "GPU memory"
    if best is not None:
        longer = need_at(best.tokens + STEP * rows)
        if longer.host_layers < shape.layers:  # its layer inputs no longer fit the host budget
            limit = "host memory"
    tokens = best.tokens // rows if best else 0
    covered = shape.model_type in kernel_families()
    return ContextPlan(
        tokens,
        method,
        vram_gib,
        ram_gib,
        budget / GIB,
        fixed,
        best,
        limit,
        parts,
        shape.model_type,
        covered,
        shape.trained_context,
    )
