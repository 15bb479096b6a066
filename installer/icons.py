"""Render Tunesmith's SVG icon to the PNG sizes Linux menus use and to a Windows .ico.

    python installer/icons.py OUT_DIR [--svg resources/icons/tunesmith.svg]

Writes OUT_DIR/tunesmith-<size>.png for 48, 128 and 256 pixels and OUT_DIR/tunesmith.ico (256 px,
which Windows scales down).  Uses Qt's own SVG renderer and ICO writer (PySide6 is in every build
environment already), offscreen, so it runs on a headless build machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (48, 128, 256)


def render_icons(svg: Path, out_dir: Path) -> list[Path]:
    """Render `svg` into `out_dir`; returns the files written (PNGs, then the .ico)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # Qt's image plugins need one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        png = out_dir / f"tunesmith-{size}.png"
        if not image.save(str(png), "PNG"):
            raise SystemExit(f"could not write {png}")
        written.append(png)
        if size == 256:
            ico = out_dir / "tunesmith.ico"
            if not image.save(str(ico), "ICO"):
                raise SystemExit(f"could not write {ico} (Qt's ico image plugin is missing)")
            written.append(ico)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--svg", type=Path, default=ROOT / "resources" / "icons" / "tunesmith.svg")
    args = parser.parse_args(argv)
    for path in render_icons(args.svg, args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
