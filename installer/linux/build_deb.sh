#!/usr/bin/env bash
# Package the bundle as a .deb: double-click opens it in the software centre (or `sudo apt install ./X.deb`).
#   bash installer/linux/build_deb.sh [OUT_DIR]     (default: dist/)
# Layout: /opt/tunesmith (the bundle), /usr/bin/tunesmith -> /opt/tunesmith/tunesmith,
# /usr/share/applications/tunesmith.desktop, /usr/share/icons/hicolor/*/apps/tunesmith.{svg,png}.
# Removing the package removes only these files: runs, exports, logs and settings live in the
# user's home (~/.tunesmith, ~/.cache/tunesmith, ~/.config, wherever runs were saved) and stay.
# DEB_COMPRESSION: gzip (default: fast and readable by every dpkg), xz (smaller, slow), zstd.
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_bundle
OUT=${1:-$DIST}
PKG=tunesmith$SUFFIX
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" "$STAGE/DEBIAN" \
  "$STAGE/usr/share/icons/hicolor/scalable/apps" "$STAGE/usr/share/doc/$PKG"
cp -a "$BUNDLE" "$STAGE/opt/tunesmith"
ln -s /opt/tunesmith/tunesmith "$STAGE/usr/bin/tunesmith"
render_desktop "/usr/bin/tunesmith" "tunesmith" "$STAGE/usr/share/applications/tunesmith.desktop"
cp "$ROOT/resources/icons/tunesmith.svg" "$STAGE/usr/share/icons/hicolor/scalable/apps/tunesmith.svg"
ICONS=$(mktemp -d)
"$PYTHON" "$ROOT/installer/icons.py" "$ICONS" >/dev/null
for size in 48 128 256; do
  mkdir -p "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps"
  cp "$ICONS/tunesmith-$size.png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/tunesmith.png"
done
rm -rf "$ICONS"
printf 'Tunesmith %s, packaged from %s.\nLicense: Apache-2.0\n' "$VERSION" "https://github.com/tunesmith" \
  > "$STAGE/usr/share/doc/$PKG/copyright"

# Qt's xcb/offscreen platforms and fonts (the same list installer/setup_env.sh installs); gcc lets
# Triton build Tunesmith's GPU kernels (without it training falls back to stock transformers).
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: $ARCH_DEB
Maintainer: Tunesmith developers <tunesmith@users.noreply.github.com>
Installed-Size: $(du -sk "$STAGE" | cut -f1)
Depends: libc6 (>= 2.31), libegl1, libgl1, libfontconfig1, libxkbcommon0, libxkbcommon-x11-0, libdbus-1-3, libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, fonts-dejavu-core
Recommends: gcc
Conflicts: $([ "$PKG" = tunesmith ] && echo tunesmith-cpu || echo tunesmith)
Replaces: $([ "$PKG" = tunesmith ] && echo tunesmith-cpu || echo tunesmith)
Section: science
Priority: optional
Homepage: https://github.com/tunesmith/tunesmith
Description: fine-tune an open LLM on your own data, then chat with it
 Tunesmith is a desktop app for LoRA / QLoRA fine-tuning of open language models
 on one consumer GPU (or the CPU), with export to GGUF and a built-in chat.
 Uninstalling keeps your runs and exports: they live in your home folder.
CONTROL
for script in postinst postrm; do
  cat > "$STAGE/DEBIAN/$script" <<'SCRIPT'
#!/bin/sh
set -e
# Refresh the menu and icon caches where the tools exist (they are optional on minimal systems).
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q /usr/share/applications || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
SCRIPT
  chmod 755 "$STAGE/DEBIAN/$script"
done
# The bundle itself never writes into /opt (see installer/pyinstaller/rthook_tunesmith.py); on purge,
# remove anything a root run left there anyway.  The user's home is never touched.
cat >> "$STAGE/DEBIAN/postrm" <<'SCRIPT'
if [ "$1" = purge ]; then rm -rf /opt/tunesmith; fi
exit 0
SCRIPT

mkdir -p "$OUT"
DEB="$OUT/${PKG}_${VERSION}_${ARCH_DEB}.deb"
start=$(date +%s)
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-gzip}" --build "$STAGE" "$DEB" >/dev/null
echo "Wrote $DEB ($(du -h "$DEB" | cut -f1), $(( $(date +%s) - start )) s)"
