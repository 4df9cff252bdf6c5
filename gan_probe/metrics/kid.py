"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, over seeded subsets."""

from __future__ import annotations

import numpy as np

from gan_probe.errors import GanProbeError


def features_to_kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 between ``subsets`` random subsets (without replacement) of
    min(subset_size, N_real, N_fake) features from each side; k(x, y) = (x.y / d + 1)^3.

    Products are taken in float32 (BLAS), kernel sums in float64."""
    x = np.asarray(real, dtype=np.float32)
    y = np.asarray(fake, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GanProbeError(f"KID needs two feature sets of the same dimension (got {x.shape} and {y.shape})")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise GanProbeError(f"KID needs at least 2 images on each side (got {len(x)} and {len(y)})")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        values[i] = unbiased_mmd2(a, b)
    return float(values.mean()), float(values.std())


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a.shape[1]
    return (np.asarray(a @ b.T, dtype=np.float64) / d + 1.0) ** 3


def unbiased_mmd2(a: np.ndarray, b: np.ndarray) -> float:
    m = len(a)
    kxx = polynomial_kernel(a, a)
    kyy = polynomial_kernel(b, b)
    kxy = polynomial_kernel(a, b)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.mean())
