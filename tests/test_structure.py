"""Lint and architecture checks, run with the tests: ruff, the import-linter layers, package names."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args, cwd=ROOT):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_ruff_lint_is_clean():
    result = run(BIN / "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold(tmp_path):
    """desktop -> core -> kernels, no Qt in core/kernels, kernel ops import only torch/triton.

    import-linter walks package folders on sys.path, which the editable install's import hook does
    not provide, so the sources are laid out as `tunesmith/...` in a scratch folder first.
    """
    package = tmp_path / "tunesmith"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("core", "kernels", "desktop"):
        shutil.copytree(ROOT / name, package / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "lint-imports"), str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_bare_kernels_name_is_not_ours(tmp_path):
    """transformers probes for a `kernels` distribution; our folder must not answer to that name.

    PyPI's own `kernels` may be installed (in a `.venv` inside the checkout, its path starts with the
    checkout's): what matters is that the module found is not our `kernels/` folder, compared exactly.
    """
    code = (
        "import importlib.util as u, json; s = u.find_spec('kernels'); "
        "print(json.dumps(None if s is None else "
        "[s.origin, list(s.submodule_search_locations or [])]))"
    )
    result = run(sys.executable, "-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    if found is not None:
        origin, locations = found
        ours = (ROOT / "kernels").resolve()
        folders = [Path(p).resolve() for p in locations]
        if origin and origin not in ("namespace", "built-in", "frozen"):
            folders.append(Path(origin).resolve().parent)
        assert ours not in folders, f"`import kernels` finds Tunesmith's kernels folder: {found}"
    result = run(
        sys.executable,
        "-c",
        "import tunesmith.kernels, tunesmith.core, tunesmith.desktop; print('ok')",
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "ok", result.stderr
