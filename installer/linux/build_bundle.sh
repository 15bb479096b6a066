#!/usr/bin/env bash
# Build the one-folder app with PyInstaller: dist/tunesmith/tunesmith (+ _internal/).
#   bash installer/linux/build_bundle.sh            the full bundle (Triton included)
#   TUNESMITH_FLAVOR=cpu bash installer/linux/build_bundle.sh   the smaller CPU-only bundle
# Needs the project's venv with pyinstaller (pip install 'pyinstaller>=6.10,<7').  Prints the build
# time and the bundle's size; then `dist/tunesmith/tunesmith --self-test` checks the result.
set -euo pipefail
source "$(dirname "$0")/common.sh"
WORK=${WORK:-$ROOT/build/pyinstaller}
start=$(date +%s)
TUNESMITH_FLAVOR=$FLAVOR "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
  --workpath "$WORK" --distpath "$DIST" "$ROOT/build_spec.spec"
seconds=$(( $(date +%s) - start ))
echo "Built $BUNDLE ($FLAVOR) in ${seconds} s; size $(du -sh "$BUNDLE" | cut -f1)"
