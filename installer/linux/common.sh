# Shared by the Linux build scripts (sourced, not run): paths, version, the bundle and the icons.
# Callers set: set -euo pipefail.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DIST=${DIST:-$ROOT/dist}
BUNDLE=${BUNDLE:-$DIST/tunesmith}
# The version comes from pyproject.toml, the one place it is written.
VERSION=${VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)}
ARCH_DEB=${ARCH_DEB:-$(dpkg --print-architecture 2>/dev/null || echo amd64)}
ARCH=${ARCH:-$(uname -m)}
# "full" (GPU, Triton included) or "cpu" (the smaller bundle): see build_spec.spec.
FLAVOR=${TUNESMITH_FLAVOR:-full}
SUFFIX=$([ "$FLAVOR" = cpu ] && echo "-cpu" || echo "")

require_bundle() {
  if [ ! -x "$BUNDLE/tunesmith" ]; then
    echo "error: no bundle at $BUNDLE (build it first: bash installer/linux/build_bundle.sh)" >&2
    exit 1
  fi
}

# render_desktop EXEC ICON OUT: the .desktop entry with its command and icon filled in.
render_desktop() {
  sed -e "s|@EXEC@|$1|" -e "s|@ICON@|$2|" "$ROOT/installer/linux/tunesmith.desktop.in" > "$3"
}
