"""CMMD: the formula against a direct transcription of the authors' estimator, and its properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gan_probe.errors import GanProbeError
from gan_probe.metrics.cmmd import SCALE, SIGMA, features_to_cmmd


def _unit_rows(rng, n, d, shift=0.0):
    x = rng.standard_normal((n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _naive_cmmd(x, y, sigma=10.0, scale=1000.0):
    """google-research cmmd/distance.py written out as double loops: means over all pairs, diagonal included."""
    def k(a, b):
        return math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b)) / (2 * sigma**2))

    def mean_k(p, q):
        return sum(k(a, b) for a in p for b in q) / (len(p) * len(q))

    return scale * (mean_k(x, x) + mean_k(y, y) - 2 * mean_k(x, y))


@pytest.mark.parametrize("n,m,d,shift", [(7, 7, 5, 0.0), (9, 4, 3, 0.5), (12, 15, 8, 2.0), (1, 1, 4, 1.0)])
def test_cmmd_matches_a_naive_transcription(n, m, d, shift):
    rng = np.random.default_rng(n * 100 + m)
    x, y = _unit_rows(rng, n, d), _unit_rows(rng, m, d, shift)
    ref = _naive_cmmd(x.tolist(), y.tolist())
    assert features_to_cmmd(x, y) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    # unnormalised vectors and another bandwidth and scale, too: the formula does not assume unit norm
    xs, ys = 3 * rng.standard_normal((n, d)), 3 * rng.standard_normal((m, d)) + shift
    assert features_to_cmmd(xs, ys, sigma=2.5, scale=1.0) == pytest.approx(
        _naive_cmmd(xs.tolist(), ys.tolist(), sigma=2.5, scale=1.0), rel=1e-9, abs=1e-12)


def test_diagonal_is_included_not_the_unbiased_estimator():
    rng = np.random.default_rng(3)
    x, y = _unit_rows(rng, 6, 4), _unit_rows(rng, 6, 4, 1.0)
    gamma = 1 / (2 * SIGMA**2)
    kern = lambda a, b: np.exp(-gamma * ((a[:, None] - b[None]) ** 2).sum(-1))  # noqa: E731
    kxx, kyy, kxy = kern(x, x), kern(y, y), kern(x, y)
    biased = SCALE * (kxx.mean() + kyy.mean() - 2 * kxy.mean())
    n = len(x)
    unbiased = SCALE * ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - n) / (n * (n - 1)) - 2 * kxy.mean())
    ours = features_to_cmmd(x, y)
    assert ours == pytest.approx(biased, rel=1e-10)
    assert abs(ours - unbiased) > 1e-3 * abs(ours)  # and so it is not KID's estimator


def test_float32_transcription_of_the_reference_agrees():
    """The reference runs in float32 (JAX): its expression in float32 numpy agrees to float32 rounding."""
    rng = np.random.default_rng(5)
    x, y = _unit_rows(rng, 200, 64).astype(np.float32), _unit_rows(rng, 150, 64, 0.3).astype(np.float32)
    gamma = np.float32(1 / (2 * 10**2))

    def mean_k(a, b):
        a_sq, b_sq = np.diag(a @ a.T), np.diag(b @ b.T)
        return np.mean(np.exp(-gamma * (-2 * (a @ b.T) + a_sq[:, None] + b_sq[None, :])))

    ref = 1000 * (mean_k(x, x) + mean_k(y, y) - 2 * mean_k(x, y))
    assert features_to_cmmd(x, y) == pytest.approx(float(ref), rel=1e-3)


def test_identical_sets_give_zero_and_the_value_is_symmetric_and_nonnegative():
    rng = np.random.default_rng(0)
    x, y = _unit_rows(rng, 50, 16), _unit_rows(rng, 40, 16, 0.2)
    assert features_to_cmmd(x, x) == 0.0
    assert features_to_cmmd(x, y) == pytest.approx(features_to_cmmd(y, x), rel=1e-12)
    assert features_to_cmmd(x, y) > 0
    for seed in range(5):  # the V-statistic is a squared RKHS norm: never negative
        r = np.random.default_rng(seed)
        assert features_to_cmmd(_unit_rows(r, 8, 4), _unit_rows(r, 9, 4)) >= -1e-12


def test_scale_is_linear_and_blocks_do_not_change_the_value():
    rng = np.random.default_rng(1)
    x, y = _unit_rows(rng, 33, 8), _unit_rows(rng, 21, 8, 0.5)
    base = features_to_cmmd(x, y)
    assert features_to_cmmd(x, y, scale=1.0) * 1000 == pytest.approx(base, rel=1e-12)
    assert features_to_cmmd(x, y, scale=7.0) == pytest.approx(base * 7 / 1000, rel=1e-12)
    for block in (1, 5, 32, 4096):
        assert features_to_cmmd(x, y, block=block) == pytest.approx(base, rel=1e-12)


def test_wide_kernel_limit_is_the_squared_mean_difference():
    """For sigma >> the spread, k = 1 - gamma ||a - b||^2 + O(gamma^2), so MMD^2 -> 2 gamma ||mu_x - mu_y||^2."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((60, 6)), rng.standard_normal((50, 6)) + 0.7
    sigma = 1e3
    gamma = 1 / (2 * sigma**2)
    dmu = x.mean(0) - y.mean(0)
    assert features_to_cmmd(x, y, sigma=sigma, scale=1.0) == pytest.approx(2 * gamma * dmu @ dmu, rel=1e-3)


def test_bad_input_is_a_user_error():
    x = np.zeros((3, 4))
    with pytest.raises(GanProbeError, match="same dimension"):
        features_to_cmmd(x, np.zeros((3, 5)))
    with pytest.raises(GanProbeError, match="^sigma must be"):
        features_to_cmmd(x, x, sigma=0)
    with pytest.raises(GanProbeError, match="^y must be a non-empty"):
        features_to_cmmd(x, np.zeros((0, 4)))
    with pytest.raises(GanProbeError, match="NaN"):
        features_to_cmmd(x, np.full((2, 4), np.nan))
