"""Raster figures: the PIL helpers every analysis draws its PNGs with (no plotting library).

- :func:`save_png`: a PIL image or an H x W (x C) uint8 array, written atomically;
- :func:`font`: PIL's default font, at a size where this Pillow supports one;
- :func:`tile`: one uint8 image as an RGB tile, upscaled (nearest neighbour) so small images stay readable;
- :func:`histogram_panel`: a histogram panel (share of each set per bin, a dashed marker line).

The report's inline-SVG line plots (training curves) are :mod:`gan_probe.report.svg`: they are
HTML, drawn only by the report. This module sits below both ``analysis`` and ``report`` (it needs
only PIL, numpy and :mod:`gan_probe.io`), so an analysis never imports the report package.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gan_probe.io import atomic_path

INK = (30, 30, 30)
MARKER = (220, 30, 30)


def save_png(image: Image.Image | np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``image`` (a PIL image, or a uint8 array PIL reads: H x W or H x W x 3) to ``path``
    as PNG, atomically (temp file + rename)."""
    path = Path(path)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def font(size: int | None = None) -> ImageFont.ImageFont:
    """PIL's default font; at ``size`` px where Pillow >= 10.1 can scale it (older Pillow: a fixed
    bitmap font). ``None``: PIL's own default size."""
    if size is None:
        return ImageFont.load_default()
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def tile(image: np.ndarray, scale: int) -> Image.Image:
    """H x W x C uint8 (C = 1 or 3) -> an RGB PIL image, upscaled ``scale`` x (nearest neighbour)."""
    im = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB")
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im


def histogram_panel(dr: ImageDraw.ImageDraw, box: tuple[int, int, int, int],
                    series: list[tuple[str, np.ndarray | None, tuple]], title: str, xlabel: str,
                    marker: float | None = None, marker_label: str = "", bins: int = 40) -> None:
    """One histogram panel inside ``box`` (x0, y0, x1, y1): for each ``(name, values, colour)`` of
    ``series`` (empty or None series are skipped) the share of its values per bin, the first as
    filled bars, the others as step outlines, with a legend. The x range runs from the smallest
    value to the 99.5th percentile (larger values fall in the last bin); ``marker`` draws a dashed
    vertical line there, labelled ``marker_label``."""
    f = font()
    x0, y0, x1, y1 = box
    left, bottom = x0 + 48, y1 - 34
    right, top = x1 - 10, y0 + 22
    dr.text((x0 + 48, y0 + 4), title, fill=INK, font=f)
    vals = np.concatenate([s for _, s, _ in series if s is not None and len(s)])
    lo, hi = float(np.min(vals)), float(np.quantile(vals, 0.995))
    if marker is not None:
        lo, hi = min(lo, marker), max(hi, marker)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    hists = [(name, np.histogram(np.clip(s, lo, hi), edges)[0] / len(s), col) for name, s, col in series
             if s is not None and len(s)]
    ymax = max(float(hh.max()) for _, hh, _ in hists) or 1.0
    sx = lambda v: left + (v - lo) / (hi - lo) * (right - left)  # noqa: E731
    sy = lambda v: bottom - v / ymax * (bottom - top)  # noqa: E731
    dr.line([(left, top), (left, bottom), (right, bottom)], fill=INK, width=1)
    for t in np.linspace(lo, hi, 5):
        dr.line([(sx(t), bottom), (sx(t), bottom + 4)], fill=INK)
        dr.text((sx(t) - 14, bottom + 6), f"{t:.3g}", fill=INK, font=f)
    for t in np.linspace(0, ymax, 3):
        dr.text((x0 + 4, sy(t) - 6), f"{t:.0%}", fill=INK, font=f)
    dr.text(((left + right) // 2 - 60, y1 - 14), xlabel, fill=INK, font=f)
    legend = []
    for n, (name, hh, col) in enumerate(hists):
        if n == 0:  # filled bars for the first series
            for b, v in enumerate(hh):
                if v > 0:
                    dr.rectangle([sx(edges[b]), sy(v), sx(edges[b + 1]) - 1, bottom], fill=col)
        else:  # step outline for the others
            pts = [(sx(edges[0]), bottom)]
            for b, v in enumerate(hh):
                pts += [(sx(edges[b]), sy(v)), (sx(edges[b + 1]), sy(v))]
            pts.append((sx(edges[-1]), bottom))
            dr.line(pts, fill=col, width=2)
        legend.append((name, col))
    dr.rectangle([right - 156, top, right, top + 6 + 14 * len(legend)], fill="white", outline=(200, 200, 200))
    for n, (name, col) in enumerate(legend):
        dr.rectangle([right - 150, top + 4 + 14 * n, right - 140, top + 14 + 14 * n], fill=col)
        dr.text((right - 135, top + 2 + 14 * n), name, fill=INK, font=f)
    if marker is not None:
        for yy in range(top, bottom, 6):
            dr.line([(sx(marker), yy), (sx(marker), yy + 3)], fill=MARKER, width=2)
        dr.text((sx(marker) + 3, top + 40), marker_label, fill=MARKER, font=f)
