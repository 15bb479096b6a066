#!/usr/bin/env bash
# Package the bundle as a self-contained archive for any Linux desktop (no root needed):
#   bash installer/linux/build_tarball.sh [OUT_DIR]    -> tunesmith-VERSION-linux-ARCH.tar.gz
# Inside: tunesmith/ (the app), install.sh (adds it to your menu, for you only), uninstall.sh,
# the menu entry's template (install.sh fills in the paths), the icon and a README.  Unpack, then run ./install.sh
# (or double-click it in a file manager that runs scripts).
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_bundle
OUT=${1:-$DIST}
NAME=tunesmith$SUFFIX-$VERSION-linux-$ARCH
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
TOP="$STAGE/$NAME"
mkdir -p "$TOP"
cp -a "$BUNDLE" "$TOP/tunesmith"
cp "$ROOT/resources/icons/tunesmith.svg" "$TOP/tunesmith.svg"
cp "$ROOT/installer/linux/tunesmith.desktop.in" "$TOP/tunesmith.desktop.in"
cp "$ROOT/installer/linux/install_user.sh" "$TOP/install.sh"
cp "$ROOT/installer/linux/uninstall_user.sh" "$TOP/uninstall.sh"
chmod 755 "$TOP/install.sh" "$TOP/uninstall.sh"
cat > "$TOP/README.txt" <<TEXT
Tunesmith $VERSION for Linux ($ARCH)

  ./install.sh      add Tunesmith to your application menu (for your user; no root needed)
  ./uninstall.sh    remove it again (your runs and exports stay where they are)
  ./tunesmith/tunesmith               start it without installing
  ./tunesmith/tunesmith --self-test   check that everything works (about a minute)

Needs a desktop with the usual X11/Wayland libraries (on a minimal Debian/Ubuntu:
sudo apt install libegl1 libgl1 libfontconfig1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1).
For Tunesmith's faster GPU kernels, also a C compiler (sudo apt install gcc).
TEXT
mkdir -p "$OUT"
ARCHIVE="$(cd "$OUT" && pwd)/$NAME.tar.gz"
start=$(date +%s)
tar -C "$STAGE" -czf "$ARCHIVE" "$NAME"
echo "Wrote $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1), $(( $(date +%s) - start )) s)"
