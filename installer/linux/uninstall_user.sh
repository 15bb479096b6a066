#!/usr/bin/env bash
# Remove a per-user Tunesmith installed by install.sh:   ./uninstall.sh [PREFIX]   (default ~/.local)
# Removes the app, its command, menu entry and icon only.  Your runs, exports, datasets, logs
# (~/.tunesmith) and the model cache (~/.cache/tunesmith) are left exactly where they are.
set -euo pipefail
PREFIX=${1:-$HOME/.local}
APP="$PREFIX/opt/tunesmith"
if [ ! -x "$APP/tunesmith" ]; then
  echo "Tunesmith is not installed in $APP; nothing to remove."
  exit 0
fi
rm -rf "$APP"
# Only our own link and files, checked before removal.
[ -L "$PREFIX/bin/tunesmith" ] && [ "$(readlink "$PREFIX/bin/tunesmith")" = "$APP/tunesmith" ] && rm -f "$PREFIX/bin/tunesmith"
rm -f "$PREFIX/share/applications/tunesmith.desktop" "$PREFIX/share/icons/hicolor/scalable/apps/tunesmith.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$PREFIX/share/applications" || true
echo "Tunesmith was removed from $APP. Your runs and exports were not touched."
