"""What this machine can train on: the one place that reads GPU, CUDA, torch and triton facts.

Used by the VRAM estimator, the precision chooser, the app's GPU panel and `tunesmith info`.
It reads facts; it does not decide what to do with them.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

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


def memory_in_use_gb() -> tuple[float, float, float]:
    """(allocated, reserved, total) GiB: GPU memory on CUDA, this process's RAM on the CPU."""
    import torch

    if torch.cuda.is_available():
        return (
            torch.cuda.memory_allocated() / GIB,
            torch.cuda.memory_reserved() / GIB,
            torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / GIB,
        )
    import psutil

    rss = psutil.Process().memory_info().rss / GIB
    return rss, rss, _ram_total_gb()
