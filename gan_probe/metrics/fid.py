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
    """Mean and covariance of features fed batch by batch, in float64: equal to ``np.mean`` /
    ``np.cov`` of the stacked features, without keeping them.

    It keeps sums of the rows' deviations from a shift (the first batch's mean, so that nothing
    cancels however far the features sit from 0): their sum and the sum of their outer products,
    updated in place by one symmetric rank-k product per batch (BLAS ``syrk``: half a matrix
    product, no d x d temporaries; a few ms at d = 2048 for a batch of 50). Batches are numpy
    arrays, or torch tensors: those are accumulated in float64 where they are (a GPU's float64
    products instead of a round trip to the CPU; MPS, which has no float64, on the CPU).
    :meth:`statistics` and :meth:`moments` return numpy arrays either way; :meth:`add_moments`
    merges another part's (n, mean, m2), e.g. another process's (Chan et al.'s pairwise update).
    This module never imports torch."""

    def __init__(self) -> None:
        self.n = 0
        self._shift = None  # float64 d: the first batch's mean
        self._sum = None  # float64 d: sum of (x - shift)
        self._outer = None  # float64 d x d: sum of (x - shift)(x - shift)^T (numpy: upper triangle, Fortran order)

    def update(self, batch) -> None:
        if _is_tensor(batch):
            x = batch.detach()
            x = (x.cpu() if x.device.type == "mps" else x).double()
        else:
            x = np.asarray(batch, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            return
        if self.n == 0:
            self._start(x.mean(0))
        d = x - self._shift
        self._add_outer(d)
        self._sum += d.sum(0)
        self.n += len(x)

    def _start(self, shift) -> None:
        self._shift = shift
        self._sum = shift * 0
        if _is_tensor(shift):
            self._outer = shift.new_zeros((len(shift), len(shift)))
        else:
            self._outer = np.zeros((len(shift), len(shift)), order="F")

    def _add_outer(self, d, alpha: float = 1.0) -> None:
        """outer += alpha d^T d, in place."""
        if _is_tensor(d):
            self._outer.addmm_(d.T, d, alpha=alpha)
        else:
            from scipy.linalg.blas import dsyrk

            self._outer = dsyrk(alpha, d, trans=1, beta=1.0, c=self._outer, overwrite_c=1)

    @classmethod
    def from_moments(cls, parts) -> "StatisticsAccumulator":
        """One accumulator holding every part's rows, in order: ``parts`` are :meth:`moments` tuples
        (e.g. every rank's, gathered in rank order)."""
        merged = cls()
        for n, mean, m2 in parts:
            merged.add_moments(n, mean, m2)
        return merged

    def merge(self, other: "StatisticsAccumulator") -> None:
        """Add the rows another accumulator saw (another process's share), as if fed after ours."""
        self.add_moments(*other.moments())

    def add_moments(self, nb: int, mb, m2b) -> None:
        """Add the moments of another part (its count, mean and sum of outer products of deviations,
        float64), e.g. another process's gathered moments; a part of 0 rows adds nothing."""
        if nb == 0:
            return
        if self.n == 0:
            self._start(mb if _is_tensor(mb) else np.asarray(mb, np.float64))
        if _is_tensor(self._outer):  # where this accumulator keeps its sums
            mb, m2b = (self._shift.new_tensor(_numpy(a)) for a in (mb, m2b))
            self._outer += m2b
        else:
            mb, m2b = (np.asarray(_numpy(a), np.float64) for a in (mb, m2b))
            self._outer += np.triu(m2b)
        delta = mb - self._shift  # the part's rows deviate by delta + (their own deviation)
        self._add_outer(delta[None, :], alpha=float(nb))
        self._sum += delta * nb
        self.n += int(nb)

    def moments(self) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """(n, mean, m2) as float64 numpy arrays (None before any row): what :meth:`add_moments` takes;
        m2 is the sum of outer products of deviations from the mean."""
        if self.n == 0:
            return 0, None, None
        shift, total, outer = _numpy(self._shift), _numpy(self._sum), _numpy(self._outer)
        if not _is_tensor(self._outer):
            outer = np.triu(outer) + np.triu(outer, 1).T
        offset = total / self.n  # mean - shift
        m2 = outer - np.outer(total, offset)  # sum (x - mean)(x - mean)^T
        return self.n, shift + offset, (m2 + m2.T) / 2

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise GanProbeError(f"FID statistics need at least 2 images (got {self.n})")
        _, mean, m2 = self.moments()
        return mean, m2 / (self.n - 1)


def _is_tensor(a) -> bool:
    return type(a).__module__.startswith("torch")


def _numpy(a):
    return a.cpu().numpy() if _is_tensor(a) else a


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
