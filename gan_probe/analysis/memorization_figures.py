"""Memorization figures, drawn with PIL (no plotting library needed).

- ``neighbours.png``: the DCGAN paper's check, each generated sample (left, red
  frame when flagged as a likely copy) beside its k nearest training images;
  the most suspicious samples (lowest relative distance) first, then a seeded
  random selection;
- ``distances.png``: histograms of the nearest-training-image distance of
  generated samples vs held-out test images, and of their relative distances
  with the copy threshold marked.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gan_probe.io import atomic_path

GEN_COLOUR = (230, 120, 30)
TEST_COLOUR = (40, 100, 200)
FLAG_COLOUR = (220, 30, 30)
INK = (30, 30, 30)


def _font():
    return ImageFont.load_default()


def _tile(img: np.ndarray, scale: int) -> Image.Image:
    im = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).convert("RGB")
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im


def _save(im: Image.Image, path: Path) -> Path:
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return path


def grid_rows_order(relative: np.ndarray, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(most suspicious indices, random indices from the rest), ``rows`` each at most."""
    order = np.argsort(relative, kind="stable")
    top = order[:rows]
    rest = order[rows:]
    rng = np.random.default_rng(seed)
    rand = np.sort(rng.choice(rest, size=min(rows, len(rest)), replace=False)) if len(rest) else rest
    return top, rand


def neighbour_grid_png(path: str | os.PathLike, gen: np.ndarray, train: np.ndarray, per: dict, *,
                       rows: int = 8, seed: int = 0) -> Path:
    """Each generated sample beside its k nearest training images (see the module docstring)."""
    nb = per["neighbour_indices"]
    k = nb.shape[1]
    h, w = gen.shape[1:3]
    scale = max(1, math.ceil(64 / max(h, w)))
    tw, th = w * scale, h * scale
    pad, gap, label_w, head = 4, 14, 84, 18
    top, rand = grid_rows_order(per["relative_distance"], rows, seed)
    sections = [("most suspicious (lowest relative distance)", top), ("random samples", rand)]
    width = label_w + pad + tw + gap + k * (tw + pad) + pad
    height = 26 + sum(head + len(idx) * (th + pad) for _, idx in sections) + pad
    im = Image.new("RGB", (width, height), "white")
    dr = ImageDraw.Draw(im)
    font = _font()
    dr.text((pad, 6), f"generated sample | its {k} nearest training images (left to right); red frame = flagged",
            fill=INK, font=font)
    y = 26
    for title, idx in sections:
        dr.text((pad, y + 3), title, fill=INK, font=font)
        y += head
        for i in idx:
            rel, d1 = per["relative_distance"][i], per["nearest_distance"][i]
            dr.text((pad, y + 2), f"sample {i}", fill=INK, font=font)
            dr.text((pad, y + 16), f"rel {rel:.3f}", fill=INK, font=font)
            dr.text((pad, y + 30), f"d1 {d1:.4g}", fill=INK, font=font)
            x = label_w + pad
            im.paste(_tile(gen[i], scale), (x, y))
            if per["flagged"][i]:
                dr.rectangle([x - 2, y - 2, x + tw + 1, y + th + 1], outline=FLAG_COLOUR, width=2)
            x += tw + gap
            for j in range(k):
                im.paste(_tile(train[nb[i, j]], scale), (x, y))
                x += tw + pad
            y += th + pad
    return _save(im, Path(path))


def _panel(dr: ImageDraw.ImageDraw, box: tuple[int, int, int, int], series: list[tuple[str, np.ndarray, tuple]],
           title: str, xlabel: str, marker: float | None = None, bins: int = 40) -> None:
    """One histogram panel (share of each set per bin) inside ``box``."""
    font = _font()
    x0, y0, x1, y1 = box
    left, bottom = x0 + 48, y1 - 34
    right, top = x1 - 10, y0 + 22
    dr.text((x0 + 48, y0 + 4), title, fill=INK, font=font)
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
        dr.text((sx(t) - 14, bottom + 6), f"{t:.3g}", fill=INK, font=font)
    for t in np.linspace(0, ymax, 3):
        dr.text((x0 + 4, sy(t) - 6), f"{t:.0%}", fill=INK, font=font)
    dr.text(((left + right) // 2 - 60, y1 - 14), xlabel, fill=INK, font=font)
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
        dr.text((right - 135, top + 2 + 14 * n), name, fill=INK, font=font)
    if marker is not None:
        for yy in range(top, bottom, 6):
            dr.line([(sx(marker), yy), (sx(marker), yy + 3)], fill=FLAG_COLOUR, width=2)
        dr.text((sx(marker) + 3, top + 40), f"copy threshold {marker:.3f}", fill=FLAG_COLOUR, font=font)


def distance_histogram_png(path: str | os.PathLike, per: dict, summary: dict) -> Path:
    """Nearest-training distance and relative distance: GEN vs TEST (see the module docstring)."""
    pw, ph = 520, 320
    im = Image.new("RGB", (2 * pw, ph + 24), "white")
    dr = ImageDraw.Draw(im)
    dr.text((8, 6), summary.get("verdict_line", "")[:170], fill=INK, font=_font())
    gen_name = f"generated ({summary['n_gen']})"
    test_name = f"held-out test ({summary['n_test']})"
    _panel(dr, (0, 24, pw, ph + 24),
           [(gen_name, per["nearest_distance"], GEN_COLOUR), (test_name, per["test_nearest_distance"], TEST_COLOUR)],
           "distance to the nearest training image", "nearest-neighbour distance")
    _panel(dr, (pw, 24, 2 * pw, ph + 24),
           [(gen_name, per["relative_distance"], GEN_COLOUR), (test_name, per["test_relative_distance"], TEST_COLOUR)],
           "relative distance d1 / (alpha * mean of the next n)", "relative distance",
           marker=summary["copy_threshold"])
    return _save(im, Path(path))
