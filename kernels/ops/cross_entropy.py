"""Cross-entropy fused with the output projection, in row chunks, so the [tokens x vocab] logits never
exist in memory at once; with Gemma-2 style logit soft-capping and an ignore index.

Knows torch and triton only.  The caller gives hidden states [N, H] (or [..., H]), the projection
weight [V, H] and labels already aligned with the hidden rows (shifted by the caller for causal LM).
Forward computes, chunk by chunk, logits = hidden @ W^T (cuBLAS), then one Triton pass per row gives
the row loss and overwrites the chunk's logits with d loss / d logits, which two matmuls turn into the
gradients of hidden (and of W when it trains).  The gradients are therefore made in the forward and
kept (dh is [N, H], small); the backward only scales them by the incoming gradient.  It does not know
label smoothing, z-loss or a projection bias.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._launch import check_float, check_same_device

_BLOCK_V = 4096
_CHUNK_ELEMENTS = 1 << 26  # logits kept per chunk (128 MiB in bf16)


@triton.jit
def _ce_rows_kernel(LOGITS, stride, LABELS, LOSS, n_cols, ignore_index, softcap,
                    HAS_CAP: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """One row of logits l, label y (row ignored when y == ignore_index):

        z = cap * tanh(l / cap)  (or z = l),   lse = log sum_j exp(z_j),   loss = lse - z_y
        dl_j = (softmax(z)_j - [j == y]) * dz/dl,   dz/dl = 1 - (z / cap)^2   (or 1)

    Two passes over the row: an online max/sum for lse, then the gradient, written over the logits.
    Ignored rows get loss 0 and a zero gradient.
    """
    row = tl.program_id(0).to(tl.int64)
    base = LOGITS + row * stride
    label = tl.load(LABELS + row)
    valid = label != ignore_index
    m = tl.full([], -float("inf"), tl.float32)
    s = tl.full([], 0.0, tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        cmask = cols < n_cols
        z = tl.load(base + cols, mask=cmask, other=0.0).to(tl.float32)
        if HAS_CAP:
            z = softcap * (2.0 * tl.sigmoid(2.0 * z / softcap) - 1.0)
        z = tl.where(cmask, z, -float("inf"))
        m_new = tl.maximum(m, tl.max(z, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), axis=0)
        m = m_new
    lse = m + tl.log(s)
    z_y = tl.load(base + tl.where(valid, label, 0)).to(tl.float32)
    if HAS_CAP:
        z_y = softcap * (2.0 * tl.sigmoid(2.0 * z_y / softcap) - 1.0)
    tl.store(LOSS + row, tl.where(valid, lse - z_y, 0.0))
    keep = tl.where(valid, 1.0, 0.0)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        cmask = cols < n_cols
        z = tl.load(base + cols, mask=cmask, other=0.0).to(tl.float32)
        if HAS_CAP:
            z = softcap * (2.0 * tl.sigmoid(2.0 * z / softcap) - 1.0)
        grad = tl.exp(z - lse) - tl.where(cols == label, 1.0, 0.0)
        if HAS_CAP:
            grad = grad * (1.0 - (z / softcap) * (z / softcap))
        tl.store(base + cols, (grad * keep).to(LOGITS.dtype.element_ty), mask=cmask)


def cross_entropy_rows_(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, softcap: float | None):
    """Per-row losses (fp32) of a [rows, V] logits chunk; overwrites the logits with their gradient."""
    if logits.stride(-1) != 1:
        raise ValueError("logits must have a unit last stride")
    loss = torch.empty(logits.shape[0], device=logits.device, dtype=torch.float32)
    if logits.shape[0]:
        block = min(_BLOCK_V, triton.next_power_of_2(logits.shape[1]))
        _ce_rows_kernel[(logits.shape[0],)](
            logits, logits.stride(0), labels, loss, logits.shape[1], ignore_index, float(softcap or 1.0),
            HAS_CAP=softcap is not None, BLOCK=block, num_warps=8 if block >= 2048 else 4,
        )  # fmt: skip
    return loss


def cross_entropy_forward(hidden, weight, labels, ignore_index, softcap, chunk_rows, want_dw):
    """Returns (sum of row losses, n_valid, dh, dw or None), gradients of the *sum* of row losses."""
    n, v = hidden.shape[0], weight.shape[0]
    rows = chunk_rows or max(1, min(n, _CHUNK_ELEMENTS // v))
    loss_sum = torch.zeros((), device=hidden.device, dtype=torch.float32)
    dh = torch.empty_like(hidden)
    dw = torch.zeros(weight.shape, device=weight.device, dtype=torch.float32) if want_dw else None
    for s in range(0, n, rows):
        h = hidden[s : s + rows]
        logits = h @ weight.t()  # [rows, V]: the only logits alive at a time
        loss_sum += cross_entropy_rows_(logits, labels[s : s + rows], ignore_index, softcap).sum()
        torch.mm(logits, weight, out=dh[s : s + rows])  # dh = dlogits @ W
        if dw is not None:  # want_dw
            dw.addmm_(logits.t().to(dw.dtype), h.to(dw.dtype))  # dW += dlogits^T @ h
    n_valid = (labels != ignore_index).sum()
    return loss_sum, n_valid, dh, dw


class FusedLinearCrossEntropyFunction(torch.autograd.Function):
    """loss = sum_rows CE(hidden @ W^T) / denominator; saves dh (and dW) computed in the forward."""

    @staticmethod
    def forward(ctx, hidden, weight, labels, denominator, opts):
        ignore_index, softcap, chunk_rows = opts
        want_dw = weight.requires_grad
        loss_sum, n_valid, dh, dw = cross_entropy_forward(
            hidden, weight, labels, ignore_index, softcap, chunk_rows, want_dw
        )
        denom = n_valid.clamp_min(1).to(torch.float32) if denominator is None else denominator.float()
        ctx.save_for_backward(dh, dw, denom)
        ctx.want_dw = want_dw
        return loss_sum / denom

    @staticmethod
    def backward(ctx, dloss):
        dh, dw, denom = ctx.saved_tensors
        scale = (dloss / denom).to(dh.dtype)
        dweight = (dw * (dloss / denom)).to(dh.dtype) if ctx.want_dw else None
        return dh * scale, dweight, None, None, None


def fused_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = -100,
    softcap: float | None = None,
    num_items: torch.Tensor | int | None = None,
    chunk_rows: int | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of hidden @ weight^T against labels, never holding all logits.

    hidden [..., H], labels [...] (aligned with hidden: shift them first for next-token loss), weight
    [V, H].  The mean is over non-ignored labels, or sum / num_items when num_items is given (what
    transformers does with num_items_in_batch).  softcap: logits -> cap * tanh(logits / cap) first.
    """
    check_float("hidden", hidden)
    check_same_device(hidden=hidden, weight=weight, labels=labels)
    if hidden.shape[:-1] != labels.shape or weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"shapes do not fit: hidden {tuple(hidden.shape)}, weight {tuple(weight.shape)}, "
            f"labels {tuple(labels.shape)}"
        )
    dev = hidden.device.type
    if torch.is_autocast_enabled(dev):  # the stock head would run the projection in the autocast dtype
        hidden = hidden.to(torch.get_autocast_dtype(dev))
    h2 = hidden.reshape(-1, hidden.shape[-1])
    y = labels.reshape(-1).contiguous()
    denom = None
    if num_items is not None:
        denom = torch.as_tensor(num_items, device=hidden.device)
    with torch.autocast(dev, enabled=False):
        w = weight if weight.dtype == h2.dtype else weight.to(h2.dtype)
        return FusedLinearCrossEntropyFunction.apply(h2, w, y, denom, (ignore_index, softcap, chunk_rows))
