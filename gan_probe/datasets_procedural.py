"""``shapes``: a procedurally generated offline dataset harder than digits (32x32 RGB, 10 classes).

Each image is one filled shape (circle, ring, triangle, square, star, cross, crescent,
half-disc, L, heart) at a random rotation (up to about +-20 degrees), scale and position, in
a random bright colour, on a random dark, faintly textured background (smooth value noise, a
stripe grating, a checkerboard, or a flat colour, of amplitude <= 0.15), plus pixel noise.
Classes differ only in shape; colour, pose and texture are nuisance. Raw pixels reach about
56% with 10 labels per class (docs/classify.md). Freer settings (full rotation, either
contrast polarity) left every linear probe near chance, so they were dropped.

Everything is made from a seed by ``numpy.random.default_rng`` (PCG64, the same stream on
every platform) with elementwise IEEE operations only (+ - * / sqrt floor abs and
comparisons; no sin/cos at run time, no matrix products, no fonts), so the same seed gives
the same bytes on every machine. Images are quantised to uint8. ``train`` (5,000 images) and
``test`` (2,000) come from independent streams of the same seed and are exactly balanced
(500 and 200 per class). Generating both takes a few seconds.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

SHAPES_VERSION = 2  # bump when the generator changes: it is part of what identifies the data
SHAPES_SEED = 20151119  # the DCGAN paper's arXiv date
SHAPES_SIZE = 32
SHAPES_SPLITS = {"train": 5000, "test": 2000}
SHAPE_CLASSES = ("circle", "ring", "triangle", "square", "star", "cross", "crescent", "half-disc", "L", "heart")
_SUPERSAMPLE = 2  # render at 2x and average 2x2 blocks (antialiasing)
_MAX_TAN = 0.364  # rotations up to about +-20 degrees (tan 20 deg)
_CHUNK = 250  # images rendered at once (bounds memory: 250 x 64 x 64 float64 per array)


def _regular(n: int, radius: float = 1.0, phase: float = 0.0) -> list[tuple[float, float]]:
    # constants computed once with libm and rounded to 1e-9, so a last-ulp libm difference cannot change them
    return [(round(radius * math.sin(phase + 2 * math.pi * k / n), 9),
             round(radius * math.cos(phase + 2 * math.pi * k / n), 9)) for k in range(n)]


_TRIANGLE = [(x * 1.1, y * 1.1 - 0.15) for x, y in _regular(3)]
_STAR = [p for pair in zip(_regular(5), _regular(5, 0.42, math.pi / 5)) for p in pair]
_L = [(-0.7, -0.85), (0.75, -0.85), (0.75, -0.4), (-0.25, -0.4), (-0.25, 0.9), (-0.7, 0.9)]


def _in_polygon(x: np.ndarray, y: np.ndarray, vertices) -> np.ndarray:
    """Even-odd rule, elementwise."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(vertices)
    for k in range(n):
        (x1, y1), (x2, y2) = vertices[k], vertices[(k + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        x_at = x1 + (y - y1) * ((x2 - x1) / (y2 - y1))
        inside ^= crosses & (x < x_at)
    return inside


def _shape_mask(label: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Inside test of class ``label`` in its own frame (about [-1, 1]^2)."""
    r2 = x * x + y * y
    name = SHAPE_CLASSES[label]
    if name == "circle":
        return r2 <= 0.85
    if name == "ring":
        return (r2 <= 1.0) & (r2 >= 0.36)
    if name == "triangle":
        return _in_polygon(x, y, _TRIANGLE)
    if name == "square":
        return np.maximum(np.abs(x), np.abs(y)) <= 0.75
    if name == "star":
        return _in_polygon(x, y, _STAR)
    if name == "cross":
        ax, ay = np.abs(x), np.abs(y)
        return ((ax <= 0.28) & (ay <= 0.95)) | ((ay <= 0.28) & (ax <= 0.95))
    if name == "crescent":
        return (r2 <= 1.0) & ((x - 0.5) * (x - 0.5) + y * y >= 0.64)
    if name == "half-disc":
        return (r2 <= 1.0) & (y >= -0.15)
    if name == "L":
        return _in_polygon(x, y, _L)
    if name == "heart":  # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled to fit
        hx, hy = x * 1.25, y * 1.25 + 0.15
        a = hx * hx + hy * hy - 1
        return a * a * a - hx * hx * hy * hy * hy <= 0
    raise ValueError(label)


def _unit_vectors(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random directions (cos, sin) without trigonometry: a normalised Gaussian pair."""
    g = rng.standard_normal((n, 2))
    norm = np.sqrt(g[:, 0] * g[:, 0] + g[:, 1] * g[:, 1]) + 1e-12
    return g[:, 0] / norm, g[:, 1] / norm


def _col(v: np.ndarray) -> np.ndarray:
    return v[:, None, None]


def _triangle_wave(t: np.ndarray) -> np.ndarray:
    """A period-1 wave in [0, 1], built from floor and abs."""
    return np.abs(2 * (t - np.floor(t)) - 1)


def _value_noise(rng: np.random.Generator, n: int, x: np.ndarray, y: np.ndarray, cells: int = 4) -> np.ndarray:
    """Bilinearly interpolated random values on a (cells+1)^2 lattice; x, y in [-1, 1]."""
    grid = rng.random((n, cells + 1, cells + 1))
    gx = (x + 1) * (cells / 2)
    gy = (y + 1) * (cells / 2)
    ix = np.minimum(np.floor(gx), cells - 1).astype(np.int64)
    iy = np.minimum(np.floor(gy), cells - 1).astype(np.int64)
    fx, fy = gx - ix, gy - iy
    b = np.arange(n)[:, None, None]
    v00, v01 = grid[b, iy, ix], grid[b, iy, ix + 1]
    v10, v11 = grid[b, iy + 1, ix], grid[b, iy + 1, ix + 1]
    return (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy


def _render(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """uint8 images, N x 3 x 32 x 32, of the given labels."""
    n = len(labels)
    s = SHAPES_SIZE * _SUPERSAMPLE
    c = (np.arange(s, dtype=np.float64) + 0.5) / s * 2 - 1  # pixel centres in [-1, 1]
    y0, x0 = c[None, :, None] + np.zeros((1, 1, s)), c[None, None, :] + np.zeros((1, s, 1))

    # pose: rotation, scale, position (all per image)
    t = rng.uniform(-_MAX_TAN, _MAX_TAN, n)  # rotation by atan(t), without trigonometry
    cos, sin = 1 / np.sqrt(1 + t * t), t / np.sqrt(1 + t * t)
    scale = rng.uniform(0.5, 0.8, n)
    cx, cy = rng.uniform(-0.2, 0.2, n), rng.uniform(-0.2, 0.2, n)
    dx, dy = (x0 - _col(cx)) / _col(scale), (y0 - _col(cy)) / _col(scale)
    u = dx * _col(cos) + dy * _col(sin)
    v = dy * _col(cos) - dx * _col(sin)
    mask = np.zeros((n, s, s), dtype=bool)
    for label in np.unique(labels):
        rows = labels == label
        mask[rows] = _shape_mask(int(label), u[rows], v[rows])

    # background: a colour and a nearby one mixed by a texture (amplitude <= 0.15 per channel);
    # shape: a third colour, gently shaded
    c1 = 0.45 * rng.random((n, 3))  # dark backgrounds, bright shapes: one contrast polarity
    c2 = np.clip(c1 + 0.3 * (rng.random((n, 3)) - 0.5), 0, 1)
    kind = rng.integers(0, 4, n)
    sx, sy = _unit_vectors(rng, n)
    freq = rng.uniform(1.5, 5.0, n)
    phase = rng.random(n)
    along = (x0 * _col(sx) + y0 * _col(sy)) * _col(freq) + _col(phase)
    across = (y0 * _col(sx) - x0 * _col(sy)) * _col(freq)
    noise_tex = _value_noise(rng, n, x0 + np.zeros((n, 1, 1)), y0 + np.zeros((n, 1, 1)))
    stripes = _triangle_wave(along)
    checker = (np.floor(along) + np.floor(across)) % 2
    pattern = np.where(_col(kind == 0), noise_tex,
                       np.where(_col(kind == 1), stripes, np.where(_col(kind == 2), checker, 0.5)))
    fg = 0.4 + 0.6 * rng.random((n, 3))
    # keep the shape visible: push its colour away from the background's mean where they are close
    bg_mean = (c1 + c2) / 2
    gap = fg - bg_mean
    close = np.sqrt((gap * gap).sum(1)) < 0.4
    fg = np.where(close[:, None], np.where(bg_mean > 0.5, bg_mean - 0.45, bg_mean + 0.45), fg)
    shade = 1 + 0.25 * (u * _col(rng.uniform(-1, 1, n)) + v * _col(rng.uniform(-1, 1, n))) / 2
    out = np.empty((n, 3, SHAPES_SIZE, SHAPES_SIZE), dtype=np.uint8)
    sigma = rng.uniform(0.02, 0.05, n)
    for ch in range(3):
        bg = _col(c1[:, ch]) + (_col(c2[:, ch]) - _col(c1[:, ch])) * pattern
        img = np.where(mask, _col(fg[:, ch]) * shade, bg)
        k = _SUPERSAMPLE
        img = img.reshape(n, SHAPES_SIZE, k, SHAPES_SIZE, k)
        img = (img[:, :, 0, :, 0] + img[:, :, 0, :, 1] + img[:, :, 1, :, 0] + img[:, :, 1, :, 1]) / 4
        img = img + _col(sigma) * rng.standard_normal((n, SHAPES_SIZE, SHAPES_SIZE))
        out[:, ch] = np.clip(np.floor(img * 255 + 0.5), 0, 255).astype(np.uint8)
    return out


@lru_cache(maxsize=4)
def shapes_arrays(split: str = "train", seed: int = SHAPES_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 3 x 32 x 32 uint8, labels N int64) of one split; read-only, cached per process."""
    if split not in SHAPES_SPLITS:
        raise ValueError(f"shapes has no split {split!r}")
    stage = list(SHAPES_SPLITS).index(split)
    n = SHAPES_SPLITS[split]
    rng = np.random.default_rng([seed, SHAPES_VERSION, stage])
    labels = rng.permutation(np.arange(n, dtype=np.int64) % len(SHAPE_CLASSES))
    images = np.concatenate([_render(rng, labels[i:i + _CHUNK]) for i in range(0, n, _CHUNK)])
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def shapes_dataset(split: str, image_size: int = SHAPES_SIZE, channels: int = 3):
    """The ``shapes`` split as a gan-probe dataset: [-1, 1] float images at ``image_size``."""
    from gan_probe.data import TensorImageDataset

    images, labels = shapes_arrays(split)
    x = torch.from_numpy(images.astype(np.float32)) / 127.5 - 1
    if image_size != SHAPES_SIZE:
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear",
                                            align_corners=False).clamp_(-1, 1)
    if channels == 1:  # ITU-R 601-2 luma, as PIL's convert("L")
        x = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return TensorImageDataset(x.contiguous(), torch.from_numpy(labels.copy()))
