"""Static checks: every `tunesmith.*` import resolves for tools that do not run the import hook, and
mypy finds no error in tunesmith.core and tunesmith.kernels.

The editable install maps core/, kernels/, desktop/ and resources/ to tunesmith.* through an import hook
that static tools never execute; installer/typing_links.py lays them out as `.typing/tunesmith/*`
(directory symlinks) and pyproject.toml points mypy (`mypy_path`) and pyright (`extraPaths`) there.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPING = ROOT / ".typing"
SOURCES = ("core", "kernels", "desktop", "tests", "bench")


def _typing_tree() -> Path:
    """The link tree, created or repaired by the installer's script (idempotent)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "installer" / "typing_links.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return TYPING


def _tunesmith_imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute `tunesmith.*` module named by an import in one file, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.startswith("tunesmith.")]


def _resolves(typing_dir: Path, module: str) -> bool:
    base = typing_dir.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_every_tunesmith_import_resolves_statically() -> None:
    """What mypy, pyright and an editor's go-to-definition see: each imported module is a file in .typing."""
    typing_dir = _typing_tree()
    unresolved = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, module in _tunesmith_imports(path):
                if not _resolves(typing_dir, module):
                    unresolved.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert not unresolved, "imports that static tools cannot resolve:\n" + "\n".join(unresolved)


def test_mypy_finds_no_errors_in_core_and_kernels() -> None:
    """mypy with pyproject.toml's [tool.mypy]; its cache lives in .mypy_cache (git-ignored)."""
    _typing_tree()
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "-p", "tunesmith.core", "-p", "tunesmith.kernels"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    found = (result.stdout + result.stderr).replace(".typing/tunesmith/", "")  # as repository paths
    assert result.returncode == 0, "mypy found errors:\n" + found
    assert "Success: no issues found" in result.stdout, result.stdout + result.stderr
