"""Numbers with their uncertainty (numpy only): seeded bootstrap intervals and FD-infinity.

- :func:`features_to_bootstrap_interval`: resample the rows of each feature set with
  replacement, recompute the metric, and report the percentile interval at level ``ci``.
  Deterministic for a seed. Any metric of two feature sets works (FD, KID, CMMD, PR/DC...).
  Note: resampling with replacement repeats rows, and metrics that are biased upwards at
  finite N (FD above all) are more so on a resample (it holds ~63% distinct rows), so their
  bootstrap distribution sits above the full-sample value; the interval measures spread, it
  does not remove that bias (FD-infinity below does, for FD).
- :func:`features_to_fd_infinity` (Chong & Forsyth, CVPR 2020, "Effectively Unbiased FID and
  Inception Score and where to find them"): FD at several N, each on a seeded random subset of
  the generated features (without replacement, as their reference code mchong6/FID_IS_infinity
  shuffles and takes the first N), the reference side kept whole; a least-squares line
  FD_N = FD_inf + k / N; its intercept is FD_inf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from gan_probe.errors import GanProbeError
from gan_probe.metrics.fid import features_to_statistics, statistics_to_fid


@dataclass(frozen=True)
class BootstrapInterval:
    value: float  # the metric on the full feature sets
    low: float
    high: float
    ci: float  # the level, e.g. 0.95
    rounds: int
    seed: int
    mean: float  # of the bootstrap values (above ``value`` for metrics biased upwards at finite N)
    std: float

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "ci": self.ci, "rounds": self.rounds,
                "seed": self.seed, "bootstrap_mean": self.mean, "bootstrap_std": self.std}


def features_to_bootstrap_intervals(real: np.ndarray | None, fake: np.ndarray,
                                    metric: Callable[[np.ndarray | None, np.ndarray], Mapping[str, float]], *,
                                    ci: float = 0.95, rounds: int = 100, seed: int = 0) -> dict[str, BootstrapInterval]:
    """Percentile bootstrap intervals for a metric that returns several numbers at once (PR/DC: one kNN
    pass for four values). ``metric(real, fake)`` returns {name: value}; each round resamples the N_real
    rows of ``real`` and the N_fake rows of ``fake`` with replacement (index draws from one
    ``np.random.default_rng(seed)``, real first). ``real=None``: the reference side is fixed (e.g.
    statistics from a ``.npz``) and ``metric`` gets ``None`` for it; only ``fake`` is resampled."""
    if not 0 < ci < 1:
        raise GanProbeError(f"ci must be between 0 and 1, e.g. 0.95 (got {ci})", param="ci")
    if int(rounds) != rounds or rounds < 2:
        raise GanProbeError(f"rounds must be an integer of at least 2 (got {rounds})", param="rounds")
    rounds = int(rounds)
    fake = _rows(fake, "fake")
    if real is not None:
        real = _rows(real, "real")
    full = {k: float(v) for k, v in metric(real, fake).items()}
    rng = np.random.default_rng(seed)
    values = {k: np.empty(rounds) for k in full}
    for r in range(rounds):
        rb = real[rng.integers(0, len(real), len(real))] if real is not None else None
        fb = fake[rng.integers(0, len(fake), len(fake))]
        out = metric(rb, fb)
        for k in full:
            values[k][r] = float(out[k])
    q = 100 * np.array([(1 - ci) / 2, (1 + ci) / 2])
    result = {}
    for k, v in values.items():
        if not np.all(np.isfinite(v)):
            raise GanProbeError(f"{k} is not finite on some bootstrap resamples; too few samples for an interval",
                                param="ci")
        low, high = np.percentile(v, q)
        result[k] = BootstrapInterval(full[k], float(low), float(high), float(ci), rounds, int(seed),
                                      float(v.mean()), float(v.std(ddof=1)))
    return result


def features_to_bootstrap_interval(real: np.ndarray | None, fake: np.ndarray,
                                   metric: Callable[[np.ndarray | None, np.ndarray], float], *,
                                   ci: float = 0.95, rounds: int = 100, seed: int = 0) -> BootstrapInterval:
    """Percentile bootstrap interval at level ``ci`` of ``metric(real, fake)`` (a float), over ``rounds``
    seeded resamples of the rows of each side with replacement (see :func:`features_to_bootstrap_intervals`)."""
    return features_to_bootstrap_intervals(real, fake, lambda a, b: {"value": metric(a, b)}, ci=ci, rounds=rounds,
                                           seed=seed)["value"]


@dataclass(frozen=True)
class FDInfinity:
    value: float  # FD extrapolated to infinitely many generated samples: the fit's intercept
    slope: float  # k in FD_N = FD_inf + k / N
    sizes: np.ndarray  # the N at which FD was computed (ints, increasing)
    fds: np.ndarray  # FD at each N
    seed: int

    def as_dict(self) -> dict:
        return {"value": self.value, "slope": self.slope, "sizes": self.sizes.tolist(), "fds": self.fds.tolist(),
                "seed": self.seed}


def fd_infinity_sizes(n: int, num_points: int = 15, min_size: int | None = None) -> np.ndarray:
    """The N to evaluate FD at: ``num_points`` evenly spaced from ``min_size`` to ``n`` (distinct ints),
    as the reference's ``np.linspace(5000, 50000, 15)``; ``min_size`` defaults to n // 10 (5000 of 50,000)."""
    n = int(n)
    lo = max(2, n // 10) if min_size is None else int(min_size)
    if lo < 2 or lo >= n:
        raise GanProbeError(f"min_size must be at least 2 and below the number of samples {n} (got {lo})",
                            param="min_size")
    if num_points < 2:
        raise GanProbeError(f"num_points must be at least 2 (got {num_points})", param="num_points")
    sizes = np.unique(np.linspace(lo, n, int(num_points)).astype(np.int64))
    if len(sizes) < 2:  # pragma: no cover - lo < n guarantees two distinct ends
        raise GanProbeError(f"too few samples ({n}) for FD-infinity", param="fake")
    return sizes


def statistics_to_fd_infinity(mu_real: np.ndarray, sigma_real: np.ndarray, fake: np.ndarray, *,
                              sizes: np.ndarray | list[int] | None = None, num_points: int = 15,
                              min_size: int | None = None, seed: int = 0) -> FDInfinity:
    """FD-infinity of generated features ``fake`` (N x d) against reference statistics (mu, sigma).
    FD_N for each N in ``sizes`` (default :func:`fd_infinity_sizes`) on the first N rows of a fresh
    seeded permutation of ``fake``; least squares FD_N = FD_inf + k / N."""
    fake = _rows(fake, "fake")
    if sizes is None:
        sizes = fd_infinity_sizes(len(fake), num_points, min_size)
    sizes = np.unique(np.asarray(sizes, dtype=np.int64))
    if len(sizes) < 2 or sizes[0] < 2 or sizes[-1] > len(fake):
        raise GanProbeError(f"sizes must hold at least 2 distinct values between 2 and the number of samples "
                            f"{len(fake)} (got {sizes.tolist()})", param="sizes")
    rng = np.random.default_rng(seed)
    fds = np.empty(len(sizes))
    for i, n in enumerate(sizes):
        subset = fake[rng.permutation(len(fake))[:n]]
        fds[i] = statistics_to_fid(mu_real, sigma_real, *features_to_statistics(subset))
    design = np.stack([np.ones(len(sizes)), 1.0 / sizes], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, fds, rcond=None)
    return FDInfinity(float(intercept), float(slope), sizes, fds, int(seed))


def features_to_fd_infinity(real: np.ndarray, fake: np.ndarray, *, sizes: np.ndarray | list[int] | None = None,
                            num_points: int = 15, min_size: int | None = None, seed: int = 0) -> FDInfinity:
    """FD-infinity of ``fake`` against all of ``real`` (its mean and covariance from every row): see
    :func:`statistics_to_fd_infinity`. The reference side's own finite-N error is not extrapolated away."""
    return statistics_to_fd_infinity(*features_to_statistics(_rows(real, "real")), fake, sizes=sizes,
                                     num_points=num_points, min_size=min_size, seed=seed)


def _rows(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2 or len(arr) < 2:
        raise GanProbeError(f"{name} must be an N x d array of features with N >= 2 (got shape {arr.shape})",
                            param=name)
    return arr
