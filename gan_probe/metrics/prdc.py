"""Improved precision/recall (Kynkäänniemi et al. 2019, k=3) and density/coverage (Naeem et al.
2020, k=5) in one feature space, computed in blocks: k-NN radii by the exact blocked search of
:mod:`gan_probe.knn`, ball-membership counts over blocks of the distance matrix, never an N x N
matrix held whole. Membership is strict (``d < radius``), as the authors' reference code.
"""

from __future__ import annotations

import numpy as np

from gan_probe.errors import GanProbeError


def knn_radii(features: np.ndarray, k: int, device: str = "cpu") -> np.ndarray:
    """Distance of each point to its k-th nearest other point of the same set."""
    from gan_probe.knn import knn

    if len(features) <= k:
        raise GanProbeError(f"k = {k} nearest neighbours need more than {k} samples per side (got {len(features)})")
    dist, _ = knn(features, features, k, exclude_self=True, device=device)
    return dist[:, -1]


def _ball_counts(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, device: str) -> np.ndarray:
    """For each query, how many centres' balls (d < radius) contain it."""
    import torch

    from gan_probe.knn import iter_distance_blocks

    r = torch.as_tensor(radii, dtype=torch.float32, device=device)
    counts = np.empty(len(queries), dtype=np.int64)
    for start, end, d in iter_distance_blocks(queries, centres, device=device):
        counts[start:end] = (d < r.unsqueeze(0)).sum(1).cpu().numpy()
    return counts


def features_to_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                                 device: str = "cpu") -> tuple[float, float]:
    """(precision, recall): the share of fake samples inside the real manifold (union of real
    k-NN balls), and the share of real samples inside the fake manifold."""
    real, fake = _check(real, fake)
    precision = (_ball_counts(fake, real, knn_radii(real, k, device), device) > 0).mean()
    recall = (_ball_counts(real, fake, knn_radii(fake, k, device), device) > 0).mean()
    return float(precision), float(recall)


def features_to_density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5,
                                 device: str = "cpu") -> tuple[float, float]:
    """(density, coverage): density = mean over fakes of (real balls holding it) / k (can exceed 1);
    coverage = share of real samples whose k-NN ball holds at least one fake."""
    from gan_probe.knn import knn

    real, fake = _check(real, fake)
    radii = knn_radii(real, k, device)
    density = _ball_counts(fake, real, radii, device).mean() / k
    nearest_fake, _ = knn(real, fake, 1, device=device)
    coverage = (nearest_fake[:, 0] < radii).mean()
    return float(density), float(coverage)


def _check(real, fake) -> tuple[np.ndarray, np.ndarray]:
    real = np.asarray(real, dtype=np.float32)
    fake = np.asarray(fake, dtype=np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise GanProbeError(f"need two feature sets of the same dimension (got {real.shape} and {fake.shape})")
    return real, fake
