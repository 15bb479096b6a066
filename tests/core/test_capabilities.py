"""The first-start description of a machine: sizes that fit, old GPUs, old drivers, Triton's build needs."""

import subprocess

import pytest

from tunesmith.core.capabilities import (
    NvidiaDriver,
    describe_capabilities,
    kernel_build_problem,
    minimum_driver,
    probe_driver,
)
from tunesmith.core.hardware import HardwareInfo


def gpu(name: str, cc: tuple[int, int], vram: float, bnb: str | None = "0.50.2") -> HardwareInfo:
    return HardwareInfo("cuda", name, cc, vram, vram - 0.5, 32.0, 8, "2.11", "12.8", "3.6", bnb, "3.11")


CPU = HardwareInfo("cpu", None, None, 0.0, 0.0, 24.0, 2, "2.13", None, "3.9", "0.50.2", "3.11")


def sizes(caps) -> list[str]:
    return [f.label.split(" ")[0] for f in caps.fits]


def test_bigger_gpus_train_bigger_models_in_4bit():
    small, mid, big = (
        describe_capabilities(gpu(n, (8, 6), v))
        for n, v in (("RTX 3060", 12), ("RTX 4090", 24), ("RTX 5090", 32))
    )
    assert all(c.status == "ready" and c.can_use_gpu and c.precision == "4bit" for c in (small, mid, big))
    assert sizes(small)[-1] == "8B" and sizes(mid)[-1] == "14B" and sizes(big)[-1] == "32B"
    assert "RTX 3060 (12 GB): ready" in small.headline and "about 8B parameters" in small.headline
    assert small.actions == []
    # More memory never shortens the context a size can use.
    by_label = {f.label: f.max_context for f in mid.fits}
    assert all(by_label[f.label] >= f.max_context for f in small.fits)
    assert "up to 2,048 tokens of context" in small.summary()


def test_turing_trains_in_fp16_with_a_note():
    caps = describe_capabilities(gpu("RTX 2080", (7, 5), 8))
    assert caps.status == "ready" and caps.precision == "4bit"
    assert any("float16" in n for n in caps.notes)


def test_no_bitsandbytes_loads_16bit():
    caps = describe_capabilities(gpu("RTX 3090", (8, 6), 24, bnb=None))
    assert caps.precision == "bf16" and any("4-bit loading is unavailable" in n for n in caps.notes)


def test_pascal_is_too_old_and_falls_back_to_the_cpu():
    caps = describe_capabilities(gpu("GTX 1080", (6, 1), 8))
    assert caps.status == "gpu_too_old" and not caps.can_use_gpu and caps.precision == "fp32"
    assert "compute capability 7.0" in caps.summary() and "6.1" in caps.summary()
    assert caps.actions


def test_cpu_only_offers_small_models():
    caps = describe_capabilities(CPU)
    assert caps.status == "cpu_only" and caps.headline.startswith("No NVIDIA GPU found")
    assert sizes(caps)[0] == "SmolLM2-135M" and all(f.params_b <= 1.5 for f in caps.fits)
    assert caps.actions == []


def test_old_driver_says_which_version_to_install():
    driver = NvidiaDriver("NVIDIA GeForce RTX 3060", "535.183.01", (8, 6))
    linux = describe_capabilities(CPU, driver, torch_cuda="12.8", system="Linux")
    assert linux.status == "driver_too_old"
    assert "(535.183.01) is too old" in linux.headline
    assert "570.26 or newer" in linux.actions[0] and "ubuntu-drivers" in linux.actions[0]
    windows = describe_capabilities(CPU, driver, torch_cuda="12.8", system="Windows")
    assert "570.65 or newer" in windows.actions[0] and "NVIDIA App" in windows.actions[0]


def test_new_driver_but_no_cuda_and_the_cpu_edition():
    driver = NvidiaDriver("RTX 4070", "580.95", (8, 9))
    assert describe_capabilities(CPU, driver, "12.8", "Linux").status == "gpu_not_usable"
    cpu_build = describe_capabilities(CPU, driver, None, "Linux")
    assert cpu_build.status == "cpu_build" and "GPU edition" in cpu_build.actions[0]
    old = describe_capabilities(CPU, NvidiaDriver("GTX 960", "580.95", (5, 2)), "12.8", "Linux")
    assert old.status == "gpu_too_old"


@pytest.mark.parametrize(
    "cuda, system, expected",
    [
        ("12.8", "Linux", "570.26"),
        ("12.9", "Windows", "576.02"),
        ("12.5", "Linux", "550.54.14"),
        ("13.0", "Linux", "580.65.06"),
        ("11.8", "Windows", "520.06"),
        ("10.2", "Linux", None),
    ],
)
def test_minimum_driver(cuda, system, expected):
    assert minimum_driver(cuda, system) == expected


def fake_run(stdout: str, returncode: int = 0):
    def run(*args, **kwargs):
        return subprocess.CompletedProcess(args, returncode, stdout=stdout, stderr="")

    return run


def test_probe_driver_parses_nvidia_smi():
    driver = probe_driver(
        fake_run("NVIDIA GeForce RTX 4090, 580.95.05, 8.9\nNVIDIA GeForce RTX 3060, 580.95.05, 8.6\n")
    )
    assert driver == NvidiaDriver("NVIDIA GeForce RTX 4090", "580.95.05", (8, 9))
    assert probe_driver(fake_run("", returncode=9)) is None
    assert probe_driver(fake_run("Quadro K600, 470.1, [N/A]")) == NvidiaDriver("Quadro K600", "470.1", None)

    def missing(*args, **kwargs):
        raise FileNotFoundError("nvidia-smi")

    assert probe_driver(missing) is None


def test_kernel_build_problem(tmp_path):
    (tmp_path / "Python.h").write_text("/* header */")
    nothing = lambda name: None  # noqa: E731
    gcc = lambda name: "/usr/bin/gcc" if name == "gcc" else None  # noqa: E731
    assert kernel_build_problem({}, gcc, tmp_path, "linux") is None
    assert kernel_build_problem({"CC": "/opt/cc"}, nothing, tmp_path, "linux") is None
    no_cc = kernel_build_problem({}, nothing, tmp_path, "linux")
    assert no_cc and "No C compiler found" in no_cc and "apt install gcc" in no_cc
    no_headers = kernel_build_problem({}, gcc, tmp_path / "missing", "linux")
    assert no_headers and "Python.h" in no_headers
    assert kernel_build_problem({}, nothing, tmp_path / "missing", "win32") is None
