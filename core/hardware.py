"""What this machine can train on: the one place that reads GPU, CUDA, torch and triton facts.

Used by the VRAM estimator, the precision chooser, the app's GPU panel and `tunesmith info`, and (the
memory sources and `PeakMemory`) by the training events' memory numbers: the peak of each reporting
interval, from CUDA's allocator counters or this process's RAM.  It reads facts; it does not decide
what to do with them.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from typing import Protocol

GIB = 1024**3


@dataclass(frozen=True)
class HardwareInfo:
    device: str  # "cuda" or "cpu"
    gpu_name: str | None
    compute_capability: tuple[int, int] | None
    vram_total_gb: float
    vram_free_gb: float
    ram_total_gb: float
    cpu_count: int
    torch_version: str
    cuda_version: str | None
    triton_version: str | None
    bitsandbytes_version: str | None
    python_version: str
    gpu_count: int = 0  # CUDA GPUs visible to this process (a run may train on several: train.gpus)

    @property
    def has_gpu(self) -> bool:
        return self.device == "cuda"

    @property
    def supports_bf16(self) -> bool:
        """bf16 needs Ampere (8.0) or newer on NVIDIA; the CPU computes it (slowly) everywhere."""
        return not self.has_gpu or (self.compute_capability or (0, 0)) >= (8, 0)

    @property
    def supports_4bit(self) -> bool:
        """bitsandbytes 4-bit training: a CUDA GPU of compute capability 7.0+ with bitsandbytes."""
        return self.has_gpu and self.bitsandbytes_version is not None and self.trainable_gpu

    @property
    def trainable_gpu(self) -> bool:
        return self.has_gpu and (self.compute_capability or (0, 0)) >= (7, 0)

    def summary(self) -> str:
        if self.has_gpu:
            cc = ".".join(map(str, self.compute_capability or ()))
            head = (
                f"GPU: {self.gpu_name} (compute capability {cc}), "
                f"{self.vram_free_gb:.1f} of {self.vram_total_gb:.1f} GiB VRAM free"
            )
        else:
            head = (
                f"CPU only — training will be slow ({self.cpu_count} cores, {self.ram_total_gb:.0f} GiB RAM)"
            )
        versions = (
            f"torch {self.torch_version}, CUDA {self.cuda_version or 'none'}, "
            f"triton {self.triton_version or 'not installed'}, "
            f"bitsandbytes {self.bitsandbytes_version or 'not installed'}, Python {self.python_version}"
        )
        return f"{head}\n{versions}"

    def to_dict(self) -> dict:
        return asdict(self)


def detect_hardware() -> HardwareInfo:
    import torch

    ram_total = _ram_total_gb()
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        free, total = torch.cuda.mem_get_info(index)
        return HardwareInfo(
            device="cuda",
            gpu_name=props.name,
            compute_capability=(props.major, props.minor),
            vram_total_gb=total / GIB,
            vram_free_gb=free / GIB,
            ram_total_gb=ram_total,
            cpu_count=os.cpu_count() or 1,
            torch_version=torch.__version__,
            cuda_version=torch.version.cuda,
            triton_version=_version("triton"),
            bitsandbytes_version=_version("bitsandbytes"),
            python_version=platform.python_version(),
            gpu_count=torch.cuda.device_count(),
        )
    return HardwareInfo(
        device="cpu",
        gpu_name=None,
        compute_capability=None,
        vram_total_gb=0.0,
        vram_free_gb=0.0,
        ram_total_gb=ram_total,
        cpu_count=os.cpu_count() or 1,
        torch_version=torch.__version__,
        cuda_version=None,
        triton_version=_version("triton"),
        bitsandbytes_version=_version("bitsandbytes"),
        python_version=platform.python_version(),
    )


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _ram_total_gb() -> float:
    try:
        import psutil

        return psutil.virtual_memory().total / GIB
    except ImportError:  # psutil comes with accelerate; this is a fallback only
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB


class MemorySource(Protocol):
    """Where memory numbers come from (bytes): CUDA's allocator counters, or this process's RAM."""

    def peak(self) -> tuple[int, int]:
        """(allocated, reserved) at their highest since the last `reset_peak`."""

    def reset_peak(self) -> None:
        """Start a new interval: the peaks become the current values."""

    def sample(self) -> None:
        """Note the current use where no counter keeps the peak by itself (the CPU)."""

    def total(self) -> int:
        """What the device holds in all."""


class CudaMemory:
    """torch's caching-allocator counters: the peaks are tracked by the allocator itself, at every
    allocation, so a step's transient buffers (the recompute, the loss's logits) are counted."""

    def __init__(self, device: int | None = None) -> None:
        import torch

        self._cuda = torch.cuda
        self.device = torch.cuda.current_device() if device is None else device
        self._total = torch.cuda.get_device_properties(self.device).total_memory

    def peak(self) -> tuple[int, int]:
        return self._cuda.max_memory_allocated(self.device), self._cuda.max_memory_reserved(self.device)

    def reset_peak(self) -> None:
        self._cuda.reset_peak_memory_stats(self.device)

    def sample(self) -> None:  # the allocator keeps its own peaks
        pass

    def total(self) -> int:
        return self._total


class ProcessMemory:
    """This process's resident memory (RSS) on a machine without CUDA.  The OS keeps no resettable peak,
    so the peak is the highest of the samples taken (each step's end and each report)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._total = int(_ram_total_gb() * GIB)
        self._peak = self._rss()

    def _rss(self) -> int:
        return self._process.memory_info().rss

    def peak(self) -> tuple[int, int]:
        self.sample()
        return self._peak, self._peak

    def reset_peak(self) -> None:
        self._peak = self._rss()

    def sample(self) -> None:
        self._peak = max(self._peak, self._rss())

    def total(self) -> int:
        return self._total


def default_memory_source() -> MemorySource:
    """CUDA's counters where torch sees a GPU, else this process's RAM."""
    import torch

    return CudaMemory() if torch.cuda.is_available() else ProcessMemory()


@dataclass(frozen=True)
class MemoryPeak:
    """The highest memory use in one reporting interval, GiB."""

    allocated_gb: float
    reserved_gb: float
    total_gb: float


class PeakMemory:
    """Peak allocated and reserved memory per reporting interval: `start()` at the beginning,
    `sample()` at each step's end, `report()` at each logged step (it starts the next interval)."""

    def __init__(self, source: MemorySource | None = None) -> None:
        self.source = source if source is not None else default_memory_source()

    def start(self) -> None:
        self.source.reset_peak()

    def sample(self) -> None:
        self.source.sample()

    def report(self) -> MemoryPeak:
        allocated, reserved = self.source.peak()
        self.source.reset_peak()
        return MemoryPeak(allocated / GIB, reserved / GIB, self.source.total() / GIB)
