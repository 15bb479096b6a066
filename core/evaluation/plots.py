"""Small charts drawn straight into PNG bytes, for a report that must open anywhere without files.

No plotting library is installed with Tunesmith's engine (matplotlib is not a dependency, and Qt may not
be imported by core), so the charts are rasterised here with numpy and encoded with zlib: lines and
bars on a light grid.  Words — titles, axis ranges, legends — are the HTML's, around the image, where
they stay sharp and searchable.  Knows pixels; not the report's contents.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BASE_COLOUR = (120, 130, 150)
TUNED_COLOUR = (214, 92, 36)
EVAL_COLOUR = (40, 110, 200)
_BACKGROUND = (255, 255, 255)
_GRID = (228, 231, 236)
_AXIS = (150, 155, 165)
_MARGIN = 12


def encode_png(pixels: np.ndarray) -> bytes:
    """An RGB uint8 array [height, width, 3] as PNG bytes (8-bit truecolour, no filtering)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Series:
    xs: Sequence[float]
    ys: Sequence[float]
    colour: tuple[int, int, int]


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour: tuple[int, int, int]) -> None:
        xa, xb = sorted((int(round(x0)), int(round(x1))))
        ya, yb = sorted((int(round(y0)), int(round(y1))))
        self.pixels[max(ya, 0) : min(yb + 1, self.height), max(xa, 0) : min(xb + 1, self.width)] = colour

    def line(
        self, x0: float, y0: float, x1: float, y1: float, colour: tuple[int, int, int], width: int = 2
    ) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0)) * 2) + 1
        for t in np.linspace(0.0, 1.0, steps):
            x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
            self.rect(x - width / 2, y - width / 2, x + width / 2 - 1, y + width / 2 - 1, colour)

    def grid(self, rows: int = 4) -> None:
        for i in range(rows + 1):
            y = _MARGIN + (self.height - 2 * _MARGIN) * i / rows
            self.rect(_MARGIN, y, self.width - _MARGIN, y, _GRID)
        self.rect(_MARGIN, _MARGIN, _MARGIN, self.height - _MARGIN, _AXIS)
        self.rect(_MARGIN, self.height - _MARGIN, self.width - _MARGIN, self.height - _MARGIN, _AXIS)


def value_range(values: Sequence[float], from_zero: bool = False) -> tuple[float, float]:
    """The span an axis shows: the values' span with a little room (from 0 when asked)."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = (0.0 if from_zero else min(finite)), max(finite)
    if high - low < 1e-12:
        high = low + (abs(low) or 1.0)
    pad = 0.05 * (high - low)
    return (low if from_zero else low - pad), high + pad


def line_chart(
    series: Sequence[Series], width: int = 640, height: int = 260
) -> tuple[bytes, tuple[float, float], tuple[float, float]]:
    """(PNG, x range, y range): each series a polyline over one shared pair of axes."""
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys]
    (x_lo, x_hi), (y_lo, y_hi) = value_range(xs), value_range(ys)
    canvas = _Canvas(width, height)
    canvas.grid()
    inner_w, inner_h = width - 2 * _MARGIN, height - 2 * _MARGIN

    def at(x: float, y: float) -> tuple[float, float]:
        return _MARGIN + (x - x_lo) / (x_hi - x_lo) * inner_w, height - _MARGIN - (y - y_lo) / (
            y_hi - y_lo
        ) * inner_h

    for s in series:
        points = [at(x, y) for x, y in zip(s.xs, s.ys, strict=True) if np.isfinite(y)]
        for (xa, ya), (xb, yb) in zip(points, points[1:], strict=False):
            canvas.line(xa, ya, xb, yb, s.colour)
        for x, y in points:  # dots, so a single point shows too
            canvas.rect(x - 2, y - 2, x + 2, y + 2, s.colour)
    return encode_png(canvas.pixels), (x_lo, x_hi), (y_lo, y_hi)


def bar_chart(
    groups: Sequence[Sequence[float]],
    colours: Sequence[tuple[int, int, int]],
    width: int = 640,
    height: int = 220,
) -> tuple[bytes, float]:
    """(PNG, the top of the value axis): one cluster of bars per group, bars from 0, one colour per bar."""
    top = value_range([v for g in groups for v in g], from_zero=True)[1]
    canvas = _Canvas(width, height)
    canvas.grid()
    inner_w, inner_h = width - 2 * _MARGIN, height - 2 * _MARGIN
    slot = inner_w / max(len(groups), 1)
    for i, values in enumerate(groups):
        bar = slot * 0.7 / max(len(values), 1)
        for j, value in enumerate(values):
            if not np.isfinite(value):
                continue
            x0 = _MARGIN + i * slot + slot * 0.15 + j * bar
            canvas.rect(
                x0 + 1,
                height - _MARGIN - value / top * inner_h,
                x0 + bar - 2,
                height - _MARGIN - 1,
                colours[j],
            )
    return encode_png(canvas.pixels), top
