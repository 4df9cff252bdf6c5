"""Fréchet Inception Distance from features or statistics (numpy/scipy only, float64).

FID = ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2).

tr (S1 S2)^(1/2) is computed by the symmetric route: S1 S2 is similar to the symmetric
PSD matrix B^T S2 B for any factor S1 = B B^T (Cholesky, or S1^(1/2) from ``eigh`` when
S1 is singular), so the trace is the sum of the square roots of that matrix's
eigenvalues (``eigvalsh``; rounding negatives clamped to 0). No ``scipy.linalg.sqrtm``:
no "imaginary component" failures, singular covariances (fewer samples than dimensions)
are fine, and it is several times faster at d = 2048.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from gan_probe.errors import GanProbeError


class SmallSampleWarning(UserWarning):
    """FID from fewer samples than feature dimensions: defined, but strongly biased upwards."""


def features_to_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of N x d features in float64; sigma divides by N - 1 (``np.cov``, as pytorch-fid)."""
    acc = StatisticsAccumulator()
    acc.update(features)
    return acc.statistics()


class StatisticsAccumulator:
    """Mean and covariance of features fed batch by batch (Chan et al.'s pairwise merge, float64):
    equal to ``np.mean`` / ``np.cov`` of the stacked features, without keeping them.

    Batches are numpy arrays, or torch tensors: those are accumulated in float64 where they are (a
    GPU's float64 products instead of a round trip to the CPU; MPS, which has no float64, on the
    CPU), so the per-batch cost stays small next to the network's; :meth:`statistics` and
    :meth:`moments` return numpy arrays either way. This module never imports torch."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = None  # float64 d (numpy, or a torch tensor when fed tensors)
        self.m2 = None  # float64 d x d: the sum of outer products of deviations

    def update(self, batch) -> None:
        if type(batch).__module__.startswith("torch"):
            x = batch.detach()
            x = (x.cpu() if x.device.type == "mps" else x).double()
        else:
            x = np.asarray(batch, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            return
        mb = x.mean(0)
        d = x - mb
        self.add_moments(len(x), mb, d.T @ d)

    def merge(self, other: "StatisticsAccumulator") -> None:
        """Add the rows another accumulator saw (another process's share), as if fed after ours."""
        self.add_moments(*other.moments())

    def add_moments(self, nb: int, mb, m2b) -> None:
        """Add the moments of another part (its count, mean and sum of outer products of deviations,
        float64), e.g. another process's gathered moments; a part of 0 rows adds nothing."""
        if nb == 0:
            return
        if self.n == 0:
            if not type(mb).__module__.startswith("torch"):
                mb, m2b = np.asarray(mb, np.float64), np.asarray(m2b, np.float64)
            self.n, self.mean, self.m2 = int(nb), mb, m2b
            return
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + (delta[:, None] * delta[None, :]) * (self.n * nb / n)  # np.outer, in both
        self.n = n

    def moments(self) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """(n, mean, m2) as float64 numpy arrays (None before any row): what :meth:`add_moments` takes."""
        def numpy(a):
            return a.cpu().numpy() if type(a).__module__.startswith("torch") else a

        return self.n, numpy(self.mean), numpy(self.m2)

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise GanProbeError(f"FID statistics need at least 2 images (got {self.n})")
        _, mean, m2 = self.moments()
        sigma = m2 / (self.n - 1)
        return mean.copy(), (sigma + sigma.T) / 2


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (S1 S2)^(1/2) for symmetric PSD S1, S2, by a symmetric similar matrix, in float64.

    With S1 = B B^T, S1 S2 = B (B^T S2) has the eigenvalues of the symmetric PSD B^T S2 B, so the
    trace is the sum of their square roots (``eigvalsh``, rounding negatives clamped to 0). B is
    S1's Cholesky factor when S1 is positive definite (the usual case, N > d), else
    S1^(1/2) from ``eigh`` (singular S1: fewer samples than dimensions)."""
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    with _single_threaded_lapack():
        try:
            b = np.linalg.cholesky((s1 + s1.T) / 2)
        except np.linalg.LinAlgError:
            w, v = np.linalg.eigh((s1 + s1.T) / 2)
            b = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        m = b.T @ s2 @ b
        ev = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(ev, 0, None)).sum())


def _single_threaded_lapack():
    """One BLAS thread for the eigen solvers: on a loaded machine multithreaded LAPACK eigen
    solvers spin and ran 10x slower here (d = 2048: eigvalsh 1.6 s on one thread, 17 s on two)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def statistics_to_fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """FID between two (mu, sigma) pairs; a rounding-negative result is returned as 0."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise GanProbeError(f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
                            f"{sigma2.shape} (different --dims?)")
    for name, a in (("mu", mu1), ("mu", mu2), ("sigma", sigma1), ("sigma", sigma2)):
        if not np.all(np.isfinite(a)):
            raise GanProbeError(f"statistics contain NaN or infinite values in {name}")
    diff = mu1 - mu2
    fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    return max(float(fid), 0.0)


@dataclass(frozen=True)
class SampleSizeCheck:
    """N against the feature dimension d, for a table's note: ``note`` always, ``warning`` when N is too
    small for the number to mean much (covariance metrics with N < d: singular covariance)."""

    n: int
    dims: int
    note: str
    warning: str | None

    @property
    def too_small(self) -> bool:
        return self.warning is not None


def check_sample_size(n: int, dims: int, what: str = "FID", uses_covariance: bool = True) -> SampleSizeCheck:
    """How N compares with d. For metrics built on a covariance (FID, FD in any space) N < d makes it
    singular and the estimate strongly biased upwards: a warning. Other metrics (KID, CMMD, PR/DC)
    have no such threshold; the note then points at the interval (``ci``) instead."""
    n, dims = int(n), int(dims)
    note = f"N = {n} for {dims}-d features (N/d = {n / dims:.2g})"
    if not uses_covariance:
        return SampleSizeCheck(n, dims, note + f"; no N-vs-d threshold for {what}: judge by the interval (ci)", None)
    if n >= dims:
        return SampleSizeCheck(n, dims, note + f"; {what} is biased upwards at finite N: compare only at equal N",
                               None)
    warning = (f"{what} from {n} samples in {dims} dimensions (N < d): the covariance is singular and small-N FID "
               f"is biased upwards; compare only numbers with the same N (50,000 is the usual convention)")
    return SampleSizeCheck(n, dims, note + "; too few: N < d", warning)


def warn_if_few_samples(n: int, dims: int, what: str = "FID") -> str | None:
    """Warn (and return the text) when N < d: the covariance is singular and FID biased upwards
    (:func:`check_sample_size`'s warning)."""
    text = check_sample_size(n, dims, what).warning
    if text is not None:
        warnings.warn(text, SmallSampleWarning, stacklevel=2)
    return text
