"""The installed llama.cpp runs on every x86-64 CPU the product supports (issue 12).

A build made with the build machine's CPU flags (pip's default, GGML_NATIVE) crashed on a CPU with AMX;
a bundle built on one machine must run on another. So the machine code itself is checked: no AVX-512
(zmm registers, opmask registers) and no AMX tile instructions in any of llama.cpp's libraries, and the
build record written by installer/llama_cpp.sh says the portable flags were used.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="the x86-64 baseline only"
)

# Instructions a CPU without AVX-512 or AMX cannot run: any zmm register or opmask register use, and
# the AMX tile instructions (ldtilecfg, tileloadd, tdpbssd, ...).
_FORBIDDEN = re.compile(r"%zmm\d|%k[1-7]\b|\b(ldtilecfg|sttilecfg|tileloadd|tilestored|tdpb\w+|tilezero)\b")


def _llama_libraries() -> list[Path]:
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    libs = sorted(p for p in lib_dir.glob("*.so*") if p.is_file())
    assert libs, f"no shared libraries in {lib_dir}"
    return libs


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_no_avx512_or_amx_instructions_in_llama_cpp():
    offenders = {}
    for lib in _llama_libraries():
        listing = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True, check=True
        ).stdout
        hits = [line.strip() for line in listing.splitlines() if _FORBIDDEN.search(line)]
        if hits:
            offenders[lib.name] = hits[:3]
    assert not offenders, f"llama.cpp was built with CPU flags newer than AVX2: {offenders}"


def test_build_record_says_portable_flags():
    record = Path(sys.prefix) / "tunesmith-llama-cpp-build.txt"
    assert record.is_file(), (
        f"{record} is missing: llama-cpp-python was not installed by installer/llama_cpp.sh "
        "(pip's own build uses the build machine's CPU flags)"
    )
    flags = record.read_text().split()
    assert "-DGGML_NATIVE=OFF" in flags
    for off in ("-DGGML_AVX512=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF"):
        assert off in flags
