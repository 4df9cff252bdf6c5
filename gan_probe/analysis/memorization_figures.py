"""Memorization figures, drawn with PIL (no plotting library needed).

- ``neighbours.png``: the DCGAN paper's check, each generated sample (left, red
  frame when flagged as a likely copy) beside its k nearest training images;
  the most suspicious samples (lowest relative distance) first, then a seeded
  random selection;
- ``distances.png``: histograms of the nearest-training-image distance of
  generated samples vs held-out test images, and of their relative distances
  with the copy threshold marked.

The shared drawing pieces (tiles, font, histogram panel, PNG writing) are :mod:`gan_probe.figures`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gan_probe.figures import INK, MARKER as FLAG_COLOUR, font, histogram_panel, save_png, tile

GEN_COLOUR = (230, 120, 30)
TEST_COLOUR = (40, 100, 200)


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
    f = font()
    dr.text((pad, 6), f"generated sample | its {k} nearest training images (left to right); red frame = flagged",
            fill=INK, font=f)
    y = 26
    for title, idx in sections:
        dr.text((pad, y + 3), title, fill=INK, font=f)
        y += head
        for i in idx:
            rel, d1 = per["relative_distance"][i], per["nearest_distance"][i]
            dr.text((pad, y + 2), f"sample {i}", fill=INK, font=f)
            dr.text((pad, y + 16), f"rel {rel:.3f}", fill=INK, font=f)
            dr.text((pad, y + 30), f"d1 {d1:.4g}", fill=INK, font=f)
            x = label_w + pad
            im.paste(tile(gen[i], scale), (x, y))
            if per["flagged"][i]:
                dr.rectangle([x - 2, y - 2, x + tw + 1, y + th + 1], outline=FLAG_COLOUR, width=2)
            x += tw + gap
            for j in range(k):
                im.paste(tile(train[nb[i, j]], scale), (x, y))
                x += tw + pad
            y += th + pad
    return save_png(im, path)


def distance_histogram_png(path: str | os.PathLike, per: dict, summary: dict) -> Path:
    """Nearest-training distance and relative distance: GEN vs TEST (see the module docstring)."""
    pw, ph = 520, 320
    im = Image.new("RGB", (2 * pw, ph + 24), "white")
    dr = ImageDraw.Draw(im)
    dr.text((8, 6), summary.get("verdict_line", "")[:170], fill=INK, font=font())
    gen_name = f"generated ({summary['n_gen']})"
    test_name = f"held-out test ({summary['n_test']})"
    histogram_panel(dr, (0, 24, pw, ph + 24),
                    [(gen_name, per["nearest_distance"], GEN_COLOUR),
                     (test_name, per["test_nearest_distance"], TEST_COLOUR)],
                    "distance to the nearest training image", "nearest-neighbour distance")
    threshold = summary["copy_threshold"]
    histogram_panel(dr, (pw, 24, 2 * pw, ph + 24),
                    [(gen_name, per["relative_distance"], GEN_COLOUR),
                     (test_name, per["test_relative_distance"], TEST_COLOUR)],
                    "relative distance d1 / (alpha * mean of the next n)", "relative distance",
                    marker=threshold, marker_label=f"copy threshold {threshold:.3f}")
    return save_png(im, path)
