"""What this machine can train, in plain words: the facts behind the app's first-start welcome.

`describe_capabilities(hardware, driver, torch_cuda)` is pure: from the hardware facts (and, when
torch sees no GPU, what `nvidia-smi` says), it returns a `Capabilities` with a one-line headline, the
model sizes that fit with the longest context each allows (sized with the app's own VRAM estimator,
`core.vram`, on reference shapes of well-known models), and what to do when the driver or GPU is too
old.  `describe_machine()` gathers the facts and calls it.  `kernel_build_problem()` says why Triton
could not build its kernels here (no C compiler or no Python headers on Linux), so training can fall
back to stock transformers with a notice instead of failing at its first step.
Knows no Qt; reads nothing heavy unless asked (`describe_machine` imports torch).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.config import RunConfig
from tunesmith.core.hardware import HardwareInfo
from tunesmith.core.vram import ModelShape, estimate_for_shape

# Reference shapes (from each model's config.json) stand for "a model of this size".
REFERENCE_MODELS: tuple[tuple[str, float, ModelShape], ...] = (
    ("SmolLM2-135M (the demo model)", 0.135, ModelShape(576, 1536, 30, 49152, 9, 3, 64, True)),
    ("0.5B (e.g. Qwen2.5-0.5B)", 0.5, ModelShape(896, 4864, 24, 151936, 14, 2, 64, True)),
    ("1B (e.g. Llama-3.2-1B)", 1.2, ModelShape(2048, 8192, 16, 128256, 32, 8, 64, True)),
    ("3B (e.g. Llama-3.2-3B)", 3.2, ModelShape(3072, 8192, 28, 128256, 24, 8, 128, True)),
    ("8B (e.g. Llama-3.1-8B)", 8.0, ModelShape(4096, 14336, 32, 128256, 32, 8, 128, False)),
    ("14B (e.g. Qwen2.5-14B)", 14.8, ModelShape(5120, 13824, 48, 152064, 40, 8, 128, False)),
    ("32B (e.g. Qwen2.5-32B)", 32.8, ModelShape(5120, 27648, 64, 152064, 40, 8, 128, False)),
    ("70B (e.g. Llama-3.1-70B)", 70.6, ModelShape(8192, 28672, 80, 128256, 64, 8, 128, False)),
)
CONTEXTS = (512, 1024, 2048, 4096, 8192, 16384)
# The desktop, the browser and the CUDA context of other programs hold some VRAM; plan with the rest.
USABLE_VRAM = 0.9
# A CPU trains at seconds per step for the demo model; beyond ~1B parameters a run takes days.
CPU_MAX_PARAMS_B = 1.5
USABLE_RAM = 0.6

# Oldest NVIDIA driver for each CUDA toolkit (NVIDIA's CUDA release notes, table 3): (Linux, Windows).
DRIVER_FOR_CUDA: dict[tuple[int, int], tuple[str, str]] = {
    (11, 8): ("520.61.05", "520.06"),
    (12, 1): ("530.30.02", "531.14"),
    (12, 4): ("550.54.14", "551.61"),
    (12, 6): ("560.28.03", "560.76"),
    (12, 8): ("570.26", "570.65"),
    (12, 9): ("575.51.03", "576.02"),
    (13, 0): ("580.65.06", "580.88"),
}
DRIVER_URL = "https://www.nvidia.com/drivers"


@dataclass(frozen=True)
class NvidiaDriver:
    """What `nvidia-smi` reports, even when torch cannot use the GPU."""

    gpu_name: str
    driver_version: str
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True)
class ModelFit:
    """A model size this machine can train, and the longest context that fits (tokens per row)."""

    label: str
    params_b: float
    max_context: int


@dataclass(frozen=True)
class Capabilities:
    # "ready" (a usable NVIDIA GPU), "cpu_only", "gpu_too_old", "driver_too_old", "cpu_build",
    # "gpu_not_usable" (a GPU and a new enough driver, but torch still cannot use it).
    status: str
    headline: str
    precision: str  # how training loads models here: "4bit", "bf16", "fp16" or "fp32"
    fits: list[ModelFit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def can_use_gpu(self) -> bool:
        return self.status == "ready"

    @property
    def largest(self) -> ModelFit | None:
        return self.fits[-1] if self.fits else None

    def summary(self) -> str:
        """The welcome text: headline, sizes, notes, then what to do."""
        lines = [self.headline]
        if self.fits:
            lines.append("You can fine-tune (LoRA, batch 1):")
            lines += [f"  - {f.label}: up to {f.max_context:,} tokens of context" for f in self.fits]
        lines += self.notes
        if self.actions:
            lines.append("What to do:")
            lines += [f"  - {a}" for a in self.actions]
        return "\n".join(lines)


# --------------------------------------------------------------------------------- pure description
def describe_capabilities(
    hardware: HardwareInfo,
    driver: NvidiaDriver | None = None,
    torch_cuda: str | None = None,
    system: str | None = None,
) -> Capabilities:
    """Say what `hardware` can train.  driver: nvidia-smi's report (None = no NVIDIA driver seen);
    torch_cuda: the CUDA version torch was built for (None = a CPU build); system: "Linux"/"Windows"."""
    system = system or platform.system()
    if hardware.has_gpu and hardware.trainable_gpu:
        return _ready(hardware)
    if hardware.has_gpu:
        return _gpu_too_old(hardware)
    if driver is None:
        return _cpu(hardware, "cpu_only", "No NVIDIA GPU found: Tunesmith will train on the CPU.", [], [])
    cc = driver.compute_capability
    if cc is not None and cc < (7, 0):
        return _cpu(
            hardware,
            "gpu_too_old",
            f"Your {driver.gpu_name} is too old for Tunesmith's GPU training: it will train on the CPU.",
            [
                f"Tunesmith needs an NVIDIA GPU of compute capability 7.0 or newer (RTX 20 series or newer); "
                f"this one is {cc[0]}.{cc[1]}."
            ],
            [
                "Small models still train on the CPU, slowly. For real work use a GPU from the RTX 20 series "
                "or newer (RTX 3060 12 GB or better recommended)."
            ],
        )
    if torch_cuda is None:
        return _cpu(
            hardware,
            "cpu_build",
            f"Your {driver.gpu_name} is not used: this is the CPU edition of Tunesmith.",
            [],
            [
                "Install the GPU edition of Tunesmith (the installer without '-cpu' in its name) to train on "
                "your GPU."
            ],
        )
    needed = minimum_driver(torch_cuda, system)
    if needed and _version_tuple(driver.driver_version) < _version_tuple(needed):
        return _cpu(
            hardware,
            "driver_too_old",
            f"Your NVIDIA driver ({driver.driver_version}) is too old for Tunesmith: it will train on the CPU.",
            [f"Tunesmith is built with CUDA {torch_cuda}, which needs driver {needed} or newer."],
            [_update_driver_action(needed, system), "Then restart Tunesmith; this check runs again."],
        )
    return _cpu(
        hardware,
        "gpu_not_usable",
        f"Your {driver.gpu_name} was found, but Tunesmith cannot use it: it will train on the CPU.",
        [
            f"The driver ({driver.driver_version}) is new enough for CUDA {torch_cuda}, yet CUDA did not start."
        ],
        [
            "Restart the computer (a driver update often needs one).",
            _update_driver_action(needed or "the latest", system),
            "Run `tunesmith info --debug` and include its output in a bug report if it still fails.",
        ],
    )


def _ready(hardware: HardwareInfo) -> Capabilities:
    precision = "4bit" if hardware.supports_4bit else ("bf16" if hardware.supports_bf16 else "fp16")
    budget = hardware.vram_total_gb * USABLE_VRAM
    fits = model_fits(precision, budget, gpu=True)
    name = f"{hardware.gpu_name} ({hardware.vram_total_gb:.0f} GB)"
    biggest = fits[-1].label.split(" ")[0] if fits else "no"
    headline = f"{name}: ready. You can fine-tune models up to about {biggest} parameters."
    notes = []
    if precision == "4bit":
        notes.append(
            "Models load in 4-bit (QLoRA): the largest models your GPU can hold, at near 16-bit quality."
        )
    else:
        notes.append(f"4-bit loading is unavailable here (bitsandbytes missing); models load in {precision}.")
    if not hardware.supports_bf16:
        notes.append(
            "This GPU has no bfloat16 (it is older than RTX 30): training uses float16, which works "
            "but is a little less stable; keep the learning rate modest."
        )
    return Capabilities("ready", headline, precision, fits, notes, [])


def _gpu_too_old(hardware: HardwareInfo) -> Capabilities:
    cc = ".".join(map(str, hardware.compute_capability or ()))
    return _cpu(
        hardware,
        "gpu_too_old",
        f"Your {hardware.gpu_name} is too old for Tunesmith's GPU training: it will train on the CPU.",
        [f"Tunesmith needs compute capability 7.0 or newer (RTX 20 series or newer); this GPU is {cc}."],
        ["Small models still train on the CPU, slowly. For real work use an RTX 20 series GPU or newer."],
    )


def _cpu(
    hardware: HardwareInfo, status: str, headline: str, notes: list[str], actions: list[str]
) -> Capabilities:
    fits = [
        f
        for f in model_fits("fp32", hardware.ram_total_gb * USABLE_RAM, gpu=False)
        if f.params_b <= CPU_MAX_PARAMS_B
    ]
    notes = [
        *notes,
        f"On the CPU ({hardware.cpu_count} cores, {hardware.ram_total_gb:.0f} GB RAM) a step takes "
        "seconds for the demo model and minutes for a 1B model: good for trying Tunesmith, slow for real work.",
    ]
    return Capabilities(status, headline, "fp32", fits, notes, actions)


def model_fits(precision: str, budget_gb: float, gpu: bool) -> list[ModelFit]:
    """Each reference model that fits in `budget_gb` at 1,024+ tokens, with its longest fitting context."""
    fits = []
    for label, params_b, shape in REFERENCE_MODELS:
        best = 0
        for context in CONTEXTS:
            config = RunConfig()
            config.train.batch_size = 1
            config.data.max_length = context
            config.train.gradient_checkpointing = gpu  # the CPU trains without it (faster)
            if estimate_for_shape(shape, precision, config, None).total_gb <= budget_gb:
                best = context
        if best >= 1024:
            fits.append(ModelFit(label, params_b, best))
    return fits


def minimum_driver(cuda: str, system: str) -> str | None:
    """The oldest driver for CUDA `cuda` ("12.8"), from the nearest listed toolkit at or below it."""
    wanted = _version_tuple(cuda)[:2]
    known = [v for v in sorted(DRIVER_FOR_CUDA) if v <= wanted and v[0] == wanted[0]]
    if not known:
        return None
    linux, windows = DRIVER_FOR_CUDA[known[-1]]
    return windows if system == "Windows" else linux


def _update_driver_action(needed: str, system: str) -> str:
    if system == "Windows":
        return f"Update the NVIDIA driver to {needed} or newer: GeForce Experience / NVIDIA App, or {DRIVER_URL}."
    return (
        f"Update the NVIDIA driver to {needed} or newer: on Ubuntu `sudo ubuntu-drivers install` "
        f"(or Software & Updates > Additional Drivers), elsewhere your distribution's driver package or {DRIVER_URL}."
    )


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.strip().split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# --------------------------------------------------------------------------------- facts (impure)
def probe_driver(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> NvidiaDriver | None:
    """Ask nvidia-smi about the first GPU; None when there is no NVIDIA driver (or it does not answer)."""
    query = ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"]
    try:
        out = run(query, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    fields = [f.strip() for f in out.stdout.strip().splitlines()[0].split(",")]
    if len(fields) < 2:
        return None
    cc = None
    if len(fields) >= 3 and "." in fields[2]:
        major, _, minor = fields[2].partition(".")
        if major.isdigit() and minor.isdigit():
            cc = (int(major), int(minor))
    return NvidiaDriver(fields[0], fields[1], cc)


def describe_machine(hardware: HardwareInfo | None = None) -> Capabilities:
    """Gather the facts (imports torch) and describe them.  `hardware`: facts already detected
    (the app detects them at start), so they are not detected twice."""
    import torch

    from tunesmith.core.hardware import detect_hardware

    hardware = hardware or detect_hardware()
    driver = None if hardware.has_gpu else probe_driver()
    return describe_capabilities(hardware, driver, torch.version.cuda)


def kernel_build_problem(
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    python_include: str | os.PathLike[str] | None = None,
    platform_name: str | None = None,
) -> str | None:
    """Why Triton cannot build its kernels' launchers here, or None when it can.

    On Linux, Triton compiles a small C launcher per kernel with gcc or clang ($CC first) against
    Python.h, at the first training step; without either, training would fail there.  Call this
    before patching a model and train with stock transformers (same results, slower) when it answers.
    triton-windows ships its own compiler and headers, so Windows needs nothing.
    """
    environ = os.environ if environ is None else environ
    if (platform_name or sys.platform).startswith("win"):
        return None
    compiler = environ.get("CC") or which("gcc") or which("clang")
    if not compiler:
        return (
            "No C compiler found, so Tunesmith's faster GPU kernels are off (training works, a bit slower "
            "and with more memory). To turn them on, install one: `sudo apt install gcc` on Debian/Ubuntu, "
            "`sudo dnf install gcc` on Fedora."
        )
    header = Path(python_include or _python_include_dir()) / "Python.h"
    if not header.is_file():
        return (
            f"Python's C headers are missing ({header}), so Tunesmith's faster GPU kernels are off (training "
            "works, a bit slower). Reinstall Tunesmith, or install python3-dev for a source install."
        )
    return None


def _python_include_dir() -> str:
    # The same lookup Triton's build step makes (triton/runtime/build.py): Debian's posix_local
    # scheme stands for posix_prefix.  In a PyInstaller bundle this is <bundle>/_internal/include/...
    scheme = sysconfig.get_default_scheme()
    if scheme == "posix_local":
        scheme = "posix_prefix"
    return sysconfig.get_paths(scheme=scheme)["include"]
