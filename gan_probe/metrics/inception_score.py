"""Inception Score from bias-free Inception logits (float64 softmax, 10 splits, std with ddof 0)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from gan_probe.errors import GanProbeError


def logits_to_inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` contiguous splits of exp(E_x KL(p(y|x) || p(y))).

    Split i holds samples ``i*N//splits .. (i+1)*N//splits - 1`` (torch-fidelity's and the
    original's split); std uses ddof 0 (numpy's default, as the reference code)."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or len(z) < splits:
        raise GanProbeError(f"the Inception Score needs at least {splits} images (got {len(z)})")
    logp = z - logsumexp(z, axis=1, keepdims=True)
    p = np.exp(logp)
    scores = []
    n = len(z)
    for i in range(splits):
        part_p = p[i * n // splits:(i + 1) * n // splits]
        part_logp = logp[i * n // splits:(i + 1) * n // splits]
        py = part_p.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):  # p(y) = 0 only where every p(y|x) = 0
            log_py = np.log(py)
            kl = np.where(part_p > 0, part_p * (part_logp - log_py), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))

