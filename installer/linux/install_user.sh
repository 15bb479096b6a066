#!/usr/bin/env bash
# Install Tunesmith for the current user from the unpacked archive (no root needed):
#   ./install.sh [PREFIX]      PREFIX defaults to ~/.local
# Copies the app to PREFIX/opt/tunesmith, adds PREFIX/bin/tunesmith, a menu entry in
# PREFIX/share/applications and the icon in PREFIX/share/icons.  Running it again updates in place.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${1:-$HOME/.local}
APP="$PREFIX/opt/tunesmith"
if [ ! -x "$HERE/tunesmith/tunesmith" ]; then
  echo "error: run this from the unpacked Tunesmith folder (tunesmith/tunesmith not found beside it)" >&2
  exit 1
fi
mkdir -p "$PREFIX/opt" "$PREFIX/bin" "$PREFIX/share/applications" "$PREFIX/share/icons/hicolor/scalable/apps"
# Copy to a new folder, then swap: an update never leaves a half-copied app behind.
rm -rf "$APP.new"
cp -a "$HERE/tunesmith" "$APP.new"
rm -rf "$APP"
mv "$APP.new" "$APP"
ln -sfn "$APP/tunesmith" "$PREFIX/bin/tunesmith"
cp "$HERE/tunesmith.svg" "$PREFIX/share/icons/hicolor/scalable/apps/tunesmith.svg"
sed -e "s|@EXEC@|\"$APP/tunesmith\"|" -e "s|@ICON@|tunesmith|" "$HERE/tunesmith.desktop.in" \
  > "$PREFIX/share/applications/tunesmith.desktop"
chmod 644 "$PREFIX/share/applications/tunesmith.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$PREFIX/share/applications" || true
cat <<TEXT
Tunesmith is installed in $APP.
It is in your application menu (log out and in if it does not show yet); from a terminal: $PREFIX/bin/tunesmith
Check it with: $PREFIX/bin/tunesmith --self-test
Remove it with: $HERE/uninstall.sh $([ "$PREFIX" = "$HOME/.local" ] || echo "$PREFIX")
TEXT
