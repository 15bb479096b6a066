"""Per-token log-probabilities of the next-token labels, fused with the output projection in row chunks,
so the [tokens x vocab] logits never exist in memory at once: what DPO, ORPO and GRPO need from the LM head.

Knows torch and triton only.  The caller gives hidden states [N, H] of the scored positions only, the head
weight [V, H] and the label of each row.  Per row, with logits l = h W^T:

    z = softcap(scale * l) / T            (softcap(x) = cap * tanh(x / cap), or x; T the temperature)
    log_prob = z_y - logsumexp(z)
    entropy = logsumexp(z) - sum_j p_j z_j,  p = softmax(z)     (and, without gradient: the mean of z,
    log sum_j p_j^2, and whether y is the first argmax — the statistics TRL's trainers log)

Why not a separate backward: the gradient of a row's log-prob depends on that row only, so the forward
writes d log_prob / d l over the chunk's logits (one more Triton pass over memory it already holds), turns
it into v = d log_prob / d h with one matmul, and the backward only scales v by the incoming per-row
gradient.  That is two head matmuls per call instead of three (forward, recompute, gradient) for the usual
case (the loss uses the log-probs; entropy is logged).  When the entropy does take part in the loss, or
the head weight trains, the backward recomputes the logits chunk by chunk instead (the general path).

    d log_prob / d z_j = [j == y] - p_j           d entropy / d z_j = p_j (sum_k p_k z_k - z_j)
    d z_j / d l_j = scale (1 - (z'_j / cap)^2) / T,  z' = softcap(scale * l_j)   (scale / T without cap)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from .._launch import check_float, check_same_device

_BLOCK_V = 4096
_CHUNK_ELEMENTS = 1 << 26  # logits kept per chunk (128 MiB in bf16)


@triton.jit
def _tempered(logit, scale, softcap, inv_t, HAS_CAP: tl.constexpr):
    """z = softcap(scale * logit) / T, and dz / dlogit."""
    x = logit * scale
    if HAS_CAP:
        capped = softcap * (2.0 * tl.sigmoid(2.0 * x / softcap) - 1.0)  # cap * tanh(x / cap)
        dz = scale * (1.0 - (capped / softcap) * (capped / softcap)) * inv_t
        return capped * inv_t, dz
    return x * inv_t, scale * inv_t + 0.0 * x


@triton.jit
def _stats_kernel(LOGITS, stride, LABELS, LSE, MEAN_PZ, LOGP, MEAN_Z, TOP1, LOG_SQ, n_cols,
                  scale, softcap, inv_t, HAS_CAP: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """One row: an online pass for max, sum e^z, sum z e^z, sum e^2z, sum z and the max before the label."""
    row = tl.program_id(0).to(tl.int64)
    base = LOGITS + row * stride
    label = tl.load(LABELS + row)
    m = tl.full([], -float("inf"), tl.float32)
    m_before = tl.full([], -float("inf"), tl.float32)
    s = tl.full([], 0.0, tl.float32)
    sz = tl.full([], 0.0, tl.float32)
    s2 = tl.full([], 0.0, tl.float32)
    z_total = tl.full([], 0.0, tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        cmask = cols < n_cols
        z, _ = _tempered(
            tl.load(base + cols, mask=cmask, other=0.0).to(tl.float32), scale, softcap, inv_t, HAS_CAP
        )
        z_total += tl.sum(tl.where(cmask, z, 0.0), axis=0)
        m_before = tl.maximum(m_before, tl.max(tl.where(cmask & (cols < label), z, -float("inf")), axis=0))
        m_new = tl.maximum(m, tl.max(tl.where(cmask, z, -float("inf")), axis=0))
        r = tl.exp(m - m_new)
        e = tl.where(cmask, tl.exp(z - m_new), 0.0)
        s = s * r + tl.sum(e, axis=0)
        sz = sz * r + tl.sum(e * tl.where(cmask, z, 0.0), axis=0)
        s2 = s2 * r * r + tl.sum(e * e, axis=0)
        m = m_new
    lse = m + tl.log(s)
    z_y, _ = _tempered(tl.load(base + label).to(tl.float32), scale, softcap, inv_t, HAS_CAP)
    tl.store(LSE + row, lse)
    tl.store(MEAN_PZ + row, sz / s)
    tl.store(LOGP + row, z_y - lse)
    tl.store(MEAN_Z + row, z_total / n_cols)
    tl.store(TOP1 + row, ((z_y >= m) & (z_y > m_before)).to(tl.int8))
    tl.store(LOG_SQ + row, tl.log(s2) - 2.0 * tl.log(s))


@triton.jit
def _grad_kernel(LOGITS, stride, LABELS, LSE, MEAN_PZ, G_LOGP, G_ENT, n_cols, scale, softcap, inv_t,
                 HAS_CAP: tl.constexpr, HAS_G_ENT: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """Overwrites one row of logits with g_logp d log_prob / d l + g_ent d entropy / d l."""
    row = tl.program_id(0).to(tl.int64)
    base = LOGITS + row * stride
    label = tl.load(LABELS + row)
    lse = tl.load(LSE + row)
    g_logp = tl.load(G_LOGP + row)
    if HAS_G_ENT:
        g_ent = tl.load(G_ENT + row)
        mean_pz = tl.load(MEAN_PZ + row)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        cmask = cols < n_cols
        z, dz = _tempered(
            tl.load(base + cols, mask=cmask, other=0.0).to(tl.float32), scale, softcap, inv_t, HAS_CAP
        )
        p = tl.exp(z - lse)
        grad = g_logp * (tl.where(cols == label, 1.0, 0.0) - p)
        if HAS_G_ENT:
            grad += g_ent * p * (mean_pz - z)
        tl.store(base + cols, (grad * dz).to(LOGITS.dtype.element_ty), mask=cmask)


@dataclass(frozen=True)
class _Head:
    """The projection's constants: scale, soft-cap (None: off), 1 / temperature, rows per chunk."""

    scale: float
    softcap: float | None
    inv_t: float
    chunk_rows: int | None

    def launch_args(self) -> dict:
        return {"scale": self.scale, "softcap": float(self.softcap or 1.0), "inv_t": self.inv_t,
                "HAS_CAP": self.softcap is not None}  # fmt: skip


def _block(n_cols: int) -> tuple[int, int]:
    block = min(_BLOCK_V, triton.next_power_of_2(n_cols))
    return block, 8 if block >= 2048 else 4


def _chunks(n: int, vocab: int, head: _Head):
    rows = head.chunk_rows or max(1, min(n, _CHUNK_ELEMENTS // vocab))
    return range(0, n, rows), rows


def _grad_into(logits, labels, lse, mean_pz, g_logp, g_ent, head: _Head) -> None:
    block, warps = _block(logits.shape[1])
    _grad_kernel[(logits.shape[0],)](
        logits, logits.stride(0), labels, lse, mean_pz, g_logp, g_ent if g_ent is not None else g_logp,
        logits.shape[1], HAS_G_ENT=g_ent is not None, BLOCK=block, num_warps=warps, **head.launch_args(),
    )  # fmt: skip


def _forward(hidden, weight, labels, head: _Head, want_v: bool):
    """Row statistics (fp32) and, when asked, v = d log_prob / d hidden for every row."""
    n, vocab = hidden.shape[0], weight.shape[0]
    f32 = {"device": hidden.device, "dtype": torch.float32}
    lse, mean_pz, logp, mean_z, log_sq = (torch.empty(n, **f32) for _ in range(5))
    top1 = torch.empty(n, device=hidden.device, dtype=torch.int8)
    v = torch.empty_like(hidden) if want_v else None
    ones = torch.ones(n, **f32) if want_v else None
    block, warps = _block(vocab)
    starts, rows = _chunks(n, vocab, head)
    for s in starts:
        e = min(s + rows, n)
        logits = hidden[s:e] @ weight.t()  # [rows, V]: the only logits alive at a time
        _stats_kernel[(e - s,)](
            logits, logits.stride(0), labels[s:e], lse[s:e], mean_pz[s:e], logp[s:e], mean_z[s:e], top1[s:e],
            log_sq[s:e], vocab, BLOCK=block, num_warps=warps, **head.launch_args(),
        )  # fmt: skip
        if v is not None and ones is not None:  # want_v
            _grad_into(logits, labels[s:e], lse[s:e], mean_pz[s:e], ones[s:e], None, head)
            torch.mm(logits, weight, out=v[s:e])
    return (lse, mean_pz, logp, mean_z, top1.bool(), log_sq), v


def _recompute_grads(hidden, weight, labels, lse, mean_pz, g_logp, g_ent, head: _Head, need_h, need_w):
    """The general backward: the logits again, chunk by chunk, turned into dh and dW (fp32 accumulate)."""
    n, vocab = hidden.shape[0], weight.shape[0]
    dh = torch.empty_like(hidden) if need_h else None
    dw = torch.zeros(weight.shape, device=weight.device, dtype=torch.float32) if need_w else None
    if g_logp is None:
        g_logp = torch.zeros(n, device=hidden.device, dtype=torch.float32)
    starts, rows = _chunks(n, vocab, head)
    for s in starts:
        e = min(s + rows, n)
        logits = hidden[s:e] @ weight.t()
        _grad_into(logits, labels[s:e], lse[s:e], mean_pz[s:e], g_logp[s:e],
                   None if g_ent is None else g_ent[s:e], head)  # fmt: skip
        if dh is not None:  # need_h
            torch.mm(logits, weight, out=dh[s:e])
        if dw is not None:  # need_w
            dw.addmm_(logits.t().to(dw.dtype), hidden[s:e].to(dw.dtype))
    return dh, dw


class FusedLinearLogProbsFunction(torch.autograd.Function):
    """(log_prob, entropy, mean_z, is_top1, log_sum_sq_probs) per row; the last three carry no gradient."""

    @staticmethod
    def forward(ctx, hidden, weight, labels, head):
        ctx.set_materialize_grads(False)
        fast = hidden.requires_grad and not weight.requires_grad
        (lse, mean_pz, logp, mean_z, top1, log_sq), v = _forward(hidden, weight, labels, head, want_v=fast)
        entropy = lse - mean_pz
        ctx.save_for_backward(hidden, weight, labels, lse, mean_pz, v)
        ctx.head = head
        ctx.mark_non_differentiable(mean_z, top1, log_sq)
        return logp, entropy, mean_z, top1, log_sq

    @staticmethod
    def backward(ctx, g_logp, g_ent, *_):
        hidden, weight, labels, lse, mean_pz, v = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[:2]
        if g_logp is None and g_ent is None:
            return None, None, None, None
        if v is not None and g_ent is None and not need_w:
            return (v * g_logp.to(v.dtype).unsqueeze(1)) if need_h else None, None, None, None
        dh, dw = _recompute_grads(
            hidden, weight, labels, lse, mean_pz,
            None if g_logp is None else g_logp.float().contiguous(),
            None if g_ent is None else g_ent.float().contiguous(), ctx.head, need_h, need_w,
        )  # fmt: skip
        return dh, None if dw is None else dw.to(weight.dtype), None, None


@dataclass
class TokenLogProbs:
    """Per-row results of `fused_linear_log_probs` (fp32; is_top1 bool); only the first two have gradients."""

    log_probs: torch.Tensor
    entropy: torch.Tensor
    mean_logits: torch.Tensor
    is_top1: torch.Tensor
    log_sum_sq_probs: torch.Tensor


def fused_linear_log_probs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 1.0,
    softcap: float | None = None,
    logit_scale: float = 1.0,
    chunk_rows: int | None = None,
) -> TokenLogProbs:
    """Log-probability of each row's label under softmax(softcap(logit_scale * hidden @ weight^T) / T).

    hidden [N, H] (only the rows to score: drop ignored positions first), weight [V, H], labels [N] in
    [0, V).  Never holds more than one chunk of logits; see the module docstring for the gradients.
    """
    check_float("hidden", hidden)
    check_same_device(hidden=hidden, weight=weight, labels=labels)
    if (
        hidden.dim() != 2
        or weight.dim() != 2
        or weight.shape[1] != hidden.shape[1]
        or labels.shape != hidden.shape[:1]
    ):
        raise ValueError(
            f"shapes do not fit: hidden {tuple(hidden.shape)}, weight {tuple(weight.shape)}, "
            f"labels {tuple(labels.shape)} (want [N, H], [V, H], [N])"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    dev = hidden.device.type
    if torch.is_autocast_enabled(dev):  # the stock head would run the projection in the autocast dtype
        hidden = hidden.to(torch.get_autocast_dtype(dev))
    head = _Head(float(logit_scale), softcap, 1.0 / float(temperature), chunk_rows)
    with torch.autocast(dev, enabled=False):
        w = weight if weight.dtype == hidden.dtype else weight.to(hidden.dtype)
        out = FusedLinearLogProbsFunction.apply(hidden.contiguous(), w, labels.contiguous(), head)
    return TokenLogProbs(*out)
