"""The installers' scripts on a placeholder payload (seconds, no PyInstaller build needed).

- Linux: build_deb.sh makes a .deb whose files, links, menu entry, icons and control fields are right;
  build_tarball.sh makes an archive whose install.sh / uninstall.sh install for one user and leave the
  user's runs alone.
- Windows: the NSIS script compiles with makensis (warnings are errors) when makensis is installed
  (`apt-get install nsis`); it is skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "installer" / "linux"


def fake_bundle(dist: Path) -> Path:
    """What PyInstaller's dist/tunesmith looks like, with a shell script as the program."""
    bundle = dist / "tunesmith"
    (bundle / "_internal" / "tunesmith" / "kernels" / "ops").mkdir(parents=True)
    (bundle / "_internal" / "tunesmith" / "kernels" / "ops" / "rms_norm.py").write_text("# source\n")
    program = bundle / "tunesmith"
    program.write_text('#!/bin/sh\necho tunesmith placeholder "$@"\n')
    program.chmod(0o755)
    return bundle


def run(cmd: list[str], **env: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_deb_layout(tmp_path):
    bundle = fake_bundle(tmp_path / "dist")
    out = run(
        ["bash", str(LINUX / "build_deb.sh"), str(tmp_path / "out")], BUNDLE=str(bundle), VERSION="1.2.3"
    )
    deb = next((tmp_path / "out").glob("tunesmith_1.2.3_*.deb"))
    assert str(deb) in out
    listing = run(["dpkg-deb", "--contents", str(deb)])
    for path in (
        "./opt/tunesmith/tunesmith",
        "./opt/tunesmith/_internal/tunesmith/kernels/ops/rms_norm.py",
        "./usr/share/applications/tunesmith.desktop",
        "./usr/share/icons/hicolor/scalable/apps/tunesmith.svg",
        "./usr/share/icons/hicolor/256x256/apps/tunesmith.png",
    ):
        assert path in listing, path
    assert "./usr/bin/tunesmith -> /opt/tunesmith/tunesmith" in listing
    assert "root/root" in listing  # --root-owner-group: no build user's ids in the package
    fields = run(["dpkg-deb", "--field", str(deb), "Package", "Version", "Depends", "Recommends"])
    assert "Package: tunesmith\n" in fields and "Version: 1.2.3" in fields
    assert "libxcb-cursor0" in fields and "Recommends: gcc" in fields
    extract = tmp_path / "x"
    run(["dpkg-deb", "-x", str(deb), str(extract)])
    entry = (extract / "usr/share/applications/tunesmith.desktop").read_text()
    assert "Exec=/usr/bin/tunesmith\n" in entry and "Icon=tunesmith\n" in entry
    if shutil.which("desktop-file-validate"):
        run(["desktop-file-validate", str(extract / "usr/share/applications/tunesmith.desktop")])
    control = tmp_path / "c"
    run(["dpkg-deb", "-e", str(deb), str(control)])
    postrm = (control / "postrm").read_text()
    assert "rm -rf /opt/tunesmith" in postrm and "HOME" not in postrm and "/home" not in postrm


def test_cpu_flavour_is_its_own_package(tmp_path):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    bundle = fake_bundle(tmp_path / "dist")
    run(
        ["bash", str(LINUX / "build_deb.sh"), str(tmp_path)],
        BUNDLE=str(bundle),
        VERSION="1.2.3",
        TUNESMITH_FLAVOR="cpu",
    )
    deb = next(tmp_path.glob("tunesmith-cpu_1.2.3_*.deb"))
    fields = run(["dpkg-deb", "--field", str(deb), "Package", "Conflicts"])
    assert "Package: tunesmith-cpu" in fields and "Conflicts: tunesmith\n" in fields


def test_tarball_installs_for_the_user_and_uninstall_keeps_runs(tmp_path):
    bundle = fake_bundle(tmp_path / "dist")
    run(["bash", str(LINUX / "build_tarball.sh"), str(tmp_path / "out")], BUNDLE=str(bundle), VERSION="1.2.3")
    archive = next((tmp_path / "out").glob("tunesmith-1.2.3-linux-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="tar")
    top = next((tmp_path / "unpacked").iterdir())
    assert {p.name for p in top.iterdir()} >= {
        "tunesmith",
        "install.sh",
        "uninstall.sh",
        "README.txt",
        "tunesmith.svg",
        "tunesmith.desktop.in",
    }
    home = tmp_path / "home"
    runs = home / "Tunesmith" / "runs" / "my-run"
    runs.mkdir(parents=True)
    (runs / "adapter.safetensors").write_text("weights")
    out = run([str(top / "install.sh")], HOME=str(home))
    assert "Tunesmith is installed" in out
    local = home / ".local"
    assert (
        run([str(local / "bin" / "tunesmith"), "--self-test"]).strip() == "tunesmith placeholder --self-test"
    )
    entry = (local / "share/applications/tunesmith.desktop").read_text()
    assert f'Exec="{local}/opt/tunesmith/tunesmith"' in entry
    run([str(top / "install.sh")], HOME=str(home))  # a second install updates in place
    out = run([str(top / "uninstall.sh")], HOME=str(home))
    assert "not touched" in out
    assert not (local / "opt" / "tunesmith").exists() and not (local / "bin" / "tunesmith").exists()
    assert not (local / "share/applications/tunesmith.desktop").exists()
    assert (runs / "adapter.safetensors").read_text() == "weights"


@pytest.mark.skipif(
    shutil.which("makensis") is None, reason="makensis is not installed (apt-get install nsis)"
)
@pytest.mark.parametrize("with_icon", [False, True])
def test_nsis_script_compiles(tmp_path, with_icon):
    payload = tmp_path / "payload"
    (payload / "_internal").mkdir(parents=True)
    for name in ("tunesmith.exe", "tunesmith-cli.exe", "_internal/base_library.zip"):
        (payload / name).write_bytes(b"placeholder")
    out_file = tmp_path / "tunesmith-test-windows-x64-installer.exe"
    cmd = ["makensis", "-V2", "-WX", "-DVERSION=1.2.3", f"-DBUNDLE_DIR={payload}", f"-DOUT_FILE={out_file}"]
    if with_icon:
        icons = tmp_path / "icons"
        run([sys.executable, str(ROOT / "installer" / "icons.py"), str(icons)], QT_QPA_PLATFORM="offscreen")
        cmd.append(f"-DICON={icons / 'tunesmith.ico'}")
    run([*cmd, str(ROOT / "installer" / "windows" / "tunesmith.nsi")])
    data = out_file.read_bytes()
    assert data[:2] == b"MZ" and len(data) > 50_000
    assert b"Nullsoft" in data
