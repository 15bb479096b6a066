"""A CUDA tensor over pinned host memory: GPU kernels read it in place over PCIe, nothing is copied.

Knows torch only.  `device_view(host, device)` presents a pinned, contiguous host tensor to
torch.asarray through the CUDA array interface; with unified virtual addressing (every 64-bit CUDA
platform) a pinned page is addressable from the GPU at its host address, so the result is an ordinary
CUDA tensor that a gather kernel can index.  kernels.patch uses it for a frozen embedding table kept in
host memory (`patch_model(embeddings_on_cpu=True)`): the GPU gathers only the rows a batch needs.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


class _CudaArray:
    """`host`'s bytes as a CUDA array interface; holding `host` keeps the memory alive as long as the
    view made from it (torch.asarray keeps a reference to this object)."""

    def __init__(self, host: torch.Tensor) -> None:
        self.host = host
        self.__cuda_array_interface__ = {
            "shape": (host.numel() * host.element_size(),),
            "typestr": "|u1",
            "data": (host.data_ptr(), False),
            "version": 3,
        }


def device_view(
    host: torch.Tensor, device: torch.device | str, page_locked: bool | None = None
) -> torch.Tensor | None:
    """`host` (pinned, contiguous) as a tensor on the CUDA `device` that reads the same memory; None
    where that cannot be set up (not pinned, no CUDA, a platform that refuses the pointer), after a
    check that the GPU reads what the host holds.  `page_locked`: the caller knows (memory registered
    with cudaHostRegister by kernels.memory.pinned_pool, which torch's is_pinned() does not report as
    pinned on every version); None: ask torch."""
    device = torch.device(device)
    locked = host.is_pinned() if page_locked is None else page_locked
    if device.type != "cuda" or not locked or not host.is_contiguous() or host.numel() == 0:
        return None
    try:
        view = torch.asarray(_CudaArray(host), device=device).view(host.dtype).view(host.shape)
    except (RuntimeError, TypeError, ValueError) as err:
        log.info("tunesmith.kernels: no device view of pinned host memory here (%s)", err)
        return None
    last = host.shape[0] - 1 if host.dim() else 0
    if host.dim() and not torch.equal(view[[0, last]].cpu(), host[[0, last]]):
        log.warning("tunesmith.kernels: the device view of pinned host memory reads wrong values: unused")
        return None
    return view


__all__ = ["device_view"]
