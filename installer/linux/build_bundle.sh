#!/usr/bin/env bash
# Build the one-folder app with PyInstaller: dist/tunesmith/tunesmith (+ _internal/).
#   bash installer/linux/build_bundle.sh            the full bundle (Triton included)
#   TUNESMITH_FLAVOR=cpu bash installer/linux/build_bundle.sh   the smaller CPU-only bundle
# Needs the project's venv with pyinstaller (pip install 'pyinstaller>=6.10,<7').  Prints the build
# time and the bundle's size; then `dist/tunesmith/tunesmith --self-test` checks the result.
set -euo pipefail
source "$(dirname "$0")/common.sh"
WORK=${WORK:-$ROOT/build/pyinstaller}
# The bundle carries the venv's llama.cpp to other machines: it must be the portable build that
# installer/llama_cpp.sh makes (installer/LLAMA_CPP.md), never pip's native one.  A venv without its
# build record gets it now (a CUDA build for a bundle needs CUDA_ARCHS, e.g. "75;86;89", set).
"$PYTHON" -c 'import sys, pathlib; sys.exit(0 if (pathlib.Path(sys.prefix) / "tunesmith-llama-cpp-build.txt").is_file() else 1)' \
  || bash "$ROOT/installer/llama_cpp.sh" "$PYTHON"
start=$(date +%s)
TUNESMITH_FLAVOR=$FLAVOR "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
  --workpath "$WORK" --distpath "$DIST" "$ROOT/build_spec.spec"
seconds=$(( $(date +%s) - start ))
echo "Built $BUNDLE ($FLAVOR) in ${seconds} s; size $(du -sh "$BUNDLE" | cut -f1)"
