"""Fused per-token attention prologue for the decode step: q/k RMSNorm, RoPE, and the KV-cache write.

Knows torch and triton only.  For one new token per row, from the fused projection output
qkv [B, (Hq + 2 Hkv) D] it writes the rotated q to a new [B, Hq, D] tensor and the rotated k and the v
into slot `slot` of one layer's cache [B, Hkv, L, D]: one launch instead of the eight small ops the
separate kernels take (two copies, two norms, two ropes, two cache writes).  Rounding mirrors those
kernels (kernels.ops.rms_norm, kernels.ops.rope): the normed head is rounded to the output dtype, then rotated
in fp32 and rounded again.  The rotation is the rotate-half layout on the first R dims of each head
(cos/sin [B, R], as the model's rotary module gives them for each row's position).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _qk_rope_cache_kernel(
    QKV, sqkv, QOUT, QN, KN, COS, SIN, scos, KC, VC, skb, skh, skl, SLOT, eps, n_q, n_kv, D, half,
    HAS_NORM: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Program (b, h) for h < Hq + Hkv; head h of row b starts at qkv[b, h D] (q heads, then k heads):

    x   = qkv head;  with norms:  x = round(x * rsqrt(mean(x^2) + eps) * w)   (w = q_norm or k_norm)
    y_d = x_d cos_d - x_{d+R/2} sin_d   (d < R/2);   x_d cos_d + x_{d-R/2} sin_d   (R/2 <= d < R);   x_d beyond R
    q heads -> QOUT[b, h];  k head j -> KC[b, j, slot], and v head j (qkv[b, (Hq + Hkv + j) D]) -> VC[b, j, slot]
    """
    pid = tl.program_id(0)
    n_heads = n_q + n_kv
    b = pid // n_heads
    h = pid % n_heads
    d = tl.arange(0, BLOCK_D)
    dm = d < D
    rot = d < 2 * half
    partner = tl.where(d < half, d + half, d - half)
    src = QKV + b.to(tl.int64) * sqkv + h * D
    x = tl.load(src + d, mask=dm, other=0.0).to(tl.float32)
    xp = tl.load(src + partner, mask=dm & rot, other=0.0).to(tl.float32)
    is_q = h < n_q
    qv = (d * 0 + h) < n_q  # the same as a vector, for masks
    if HAS_NORM:
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / D + eps)
        wq = tl.load(QN + d, mask=dm & qv, other=0.0).to(tl.float32)
        wk = tl.load(KN + d, mask=dm & ~qv, other=0.0).to(tl.float32)
        w = tl.where(qv, wq, wk)
        wpq = tl.load(QN + partner, mask=dm & rot & qv, other=0.0).to(tl.float32)
        wpk = tl.load(KN + partner, mask=dm & rot & ~qv, other=0.0).to(tl.float32)
        wp = tl.where(qv, wpq, wpk)
        x = (x * rstd * w).to(QOUT.dtype.element_ty).to(tl.float32)
        xp = (xp * rstd * wp).to(QOUT.dtype.element_ty).to(tl.float32)
    c = tl.load(COS + b * scos + d, mask=dm & rot, other=1.0).to(tl.float32)
    s = tl.load(SIN + b * scos + d, mask=dm & rot, other=0.0).to(tl.float32)
    y = tl.where(d < half, x * c - xp * s, x * c + xp * s)
    y = tl.where(rot, y, x).to(QOUT.dtype.element_ty)
    slot = tl.load(SLOT).to(tl.int64)
    if is_q:
        tl.store(QOUT + (b * n_q + h).to(tl.int64) * D + d, y, mask=dm)
    else:
        j = h - n_q
        dst = b.to(tl.int64) * skb + j * skh + slot * skl
        tl.store(KC + dst + d, y, mask=dm)
        v = tl.load(QKV + b.to(tl.int64) * sqkv + (n_heads + j) * D + d, mask=dm, other=0.0)
        tl.store(VC + dst + d, v, mask=dm)


def qk_rope_to_cache(
    qkv: torch.Tensor,
    n_q: int,
    n_kv: int,
    q_norm: torch.Tensor | None,
    k_norm: torch.Tensor | None,
    eps: float,
    cos: torch.Tensor,
    sin: torch.Tensor,
    cache_k: torch.Tensor,
    cache_v: torch.Tensor,
    slot: torch.Tensor,
) -> torch.Tensor:
    """Rotated q [B, Hq, D]; k and v of qkv [B, (Hq + 2 Hkv) D] land in cache_k/cache_v[:, :, slot].

    cos/sin [B, R] (R even, <= D); cache_k/cache_v [B, Hkv, L, D] with unit last stride; slot [1] long.
    q_norm/k_norm [D] (both or neither).
    """
    b, width = qkv.shape
    d = cache_k.shape[-1]
    if width != (n_q + 2 * n_kv) * d or qkv.stride(1) != 1:
        raise ValueError(
            f"qkv must be [B, {(n_q + 2 * n_kv) * d}] with unit column stride, got {tuple(qkv.shape)}"
        )
    if cos.shape != sin.shape or cos.shape[0] != b or cos.shape[-1] % 2 or cos.shape[-1] > d:
        raise ValueError(f"cos/sin must be [B, R] with R even and <= {d}, got {tuple(cos.shape)}")
    if (
        cache_k.stride() != cache_v.stride()
        or cache_k.stride(-1) != 1
        or cos.stride() != sin.stride()
        or cos.stride(-1) != 1
    ):
        raise ValueError("cache_k and cache_v need equal strides with a unit last one; cos and sin too")
    if (q_norm is None) != (k_norm is None):
        raise ValueError("q_norm and k_norm come together")
    q = torch.empty(b, n_q, d, device=qkv.device, dtype=qkv.dtype)
    has_norm = q_norm is not None
    _qk_rope_cache_kernel[(b * (n_q + n_kv),)](
        qkv, qkv.stride(0), q, q_norm if has_norm else qkv, k_norm if has_norm else qkv, cos, sin,
        cos.stride(0), cache_k, cache_v, cache_k.stride(0), cache_k.stride(1), cache_k.stride(2), slot,
        float(eps), n_q, n_kv, d, cos.shape[-1] // 2, HAS_NORM=has_norm, BLOCK_D=triton.next_power_of_2(d),
    )  # fmt: skip
    return q


__all__ = ["qk_rope_to_cache"]
