"""CMMD (Jayasumana et al., CVPR 2024, "Rethinking FID"): MMD with a Gaussian RBF kernel on CLIP embeddings.

    CMMD = scale * (mean k(x_i, x_j) + mean k(y_i, y_j) - 2 mean k(x_i, y_j)),
    k(a, b) = exp(-||a - b||^2 / (2 sigma^2)),  sigma = 10,  scale = 1000.

The estimator is the authors' reference code's (google-research ``cmmd/distance.py``): plain means
over *all* pairs of each kernel matrix, diagonal included (the minimum-variance "biased"
V-statistic of Gretton et al. 2012, eq. 5), not KID's unbiased U-statistic. The embeddings are
expected to be L2-normalised already (the paper's CLIP image embeddings); the formula itself
works on any vectors. numpy only, float64, computed in row blocks so memory stays bounded.
"""

from __future__ import annotations

import numpy as np

from gan_probe.errors import GanProbeError

SIGMA = 10.0
SCALE = 1000.0
ESTIMATOR = "biased MMD^2 (V-statistic, diagonal included), as google-research cmmd/distance.py"


def features_to_cmmd(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA, scale: float = SCALE,
                     block: int = 2048) -> float:
    """CMMD between embeddings ``x`` (N x d) and ``y`` (M x d); N and M may differ.

    ``sigma``: the RBF bandwidth (gamma = 1 / (2 sigma^2)); ``scale``: the factor the paper
    applies for readability; ``block``: rows per kernel block (memory only, not the result)."""
    x = _as_embeddings(x, "x")
    y = _as_embeddings(y, "y")
    if x.shape[1] != y.shape[1]:
        raise GanProbeError(f"x and y must have the same dimension (got {x.shape[1]} and {y.shape[1]})", param="x")
    if not np.isfinite(sigma) or sigma <= 0:
        raise GanProbeError(f"sigma must be a positive number (got {sigma})", param="sigma")
    if not np.isfinite(scale) or scale <= 0:
        raise GanProbeError(f"scale must be a positive number (got {scale})", param="scale")
    gamma = 1.0 / (2.0 * float(sigma) ** 2)
    k_xx = rbf_kernel_mean(x, x, gamma, block)
    k_yy = rbf_kernel_mean(y, y, gamma, block)
    k_xy = rbf_kernel_mean(x, y, gamma, block)
    return float(scale * (k_xx + k_yy - 2.0 * k_xy))


def rbf_kernel_mean(a: np.ndarray, b: np.ndarray, gamma: float, block: int = 2048) -> float:
    """Mean of exp(-gamma ||a_i - b_j||^2) over all (i, j), in float64, ``block`` rows of ``a`` at a time.
    Squared distances come from the norms and the Gram matrix (as the reference) and are clamped at 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    b_sq = np.einsum("ij,ij->i", b, b)
    total = 0.0
    step = max(1, int(block))
    for start in range(0, len(a), step):
        ab = a[start:start + step]
        a_sq = np.einsum("ij,ij->i", ab, ab)
        d2 = a_sq[:, None] + b_sq[None, :] - 2.0 * (ab @ b.T)
        total += float(np.exp(-gamma * np.maximum(d2, 0.0)).sum())
    return total / (len(a) * len(b))


def _as_embeddings(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or len(arr) == 0:
        raise GanProbeError(f"{name} must be a non-empty N x d array of embeddings (got shape {arr.shape})",
                            param=name)
    if not np.all(np.isfinite(arr)):
        raise GanProbeError(f"{name} contains NaN or infinite values", param=name)
    return arr
