"""Numbers with their uncertainty: bootstrap intervals, FD-infinity, N against d."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gan_probe.errors import GanProbeError
from gan_probe.metrics.cmmd import features_to_cmmd
from gan_probe.metrics.fid import (SmallSampleWarning, check_sample_size, features_to_statistics, statistics_to_fid,
                                   warn_if_few_samples)
from gan_probe.metrics.uncertainty import (features_to_bootstrap_interval, features_to_bootstrap_intervals,
                                           features_to_fd_infinity, fd_infinity_sizes, statistics_to_fd_infinity)


def _fd(a, b):
    return statistics_to_fid(*features_to_statistics(a), *features_to_statistics(b))


def _pair(n, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((n, d)) * 1.3 + 0.3


# ---------------------------------------------------------------- bootstrap

@pytest.mark.parametrize("name,metric", [
    ("fd", _fd),
    ("cmmd", lambda a, b: features_to_cmmd(a, b, sigma=3.0)),
    ("mean distance", lambda a, b: float(np.linalg.norm(a.mean(0) - b.mean(0)))),
])
def test_bootstrap_interval_contains_the_full_sample_value(name, metric):
    x, y = _pair(150, seed=1)
    bi = features_to_bootstrap_interval(x, y, metric, ci=0.95, rounds=60, seed=0)
    assert bi.value == pytest.approx(metric(x, y), rel=1e-12)
    assert bi.low < bi.value < bi.high, (name, bi)
    assert bi.low < bi.mean < bi.high and bi.std > 0
    assert bi.ci == 0.95 and bi.rounds == 60 and bi.seed == 0


def test_bootstrap_interval_shrinks_as_n_grows():
    widths = []
    for n in (200, 3200):
        x, y = _pair(n, seed=n)
        bi = features_to_bootstrap_interval(x, y, _fd, rounds=60, seed=0)
        widths.append(bi.high - bi.low)
    # the spread falls like 1/sqrt(N): 16x the samples, ~4x narrower
    assert widths[1] < widths[0] / 2, widths


def test_bootstrap_is_deterministic_for_a_seed_and_a_higher_level_is_wider():
    x, y = _pair(100, seed=2)
    a = features_to_bootstrap_interval(x, y, _fd, rounds=30, seed=7)
    b = features_to_bootstrap_interval(x, y, _fd, rounds=30, seed=7)
    c = features_to_bootstrap_interval(x, y, _fd, rounds=30, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    wide = features_to_bootstrap_interval(x, y, _fd, ci=0.99, rounds=30, seed=7)
    narrow = features_to_bootstrap_interval(x, y, _fd, ci=0.5, rounds=30, seed=7)
    assert wide.low <= a.low <= narrow.low <= narrow.high <= a.high <= wide.high


def test_bootstrap_resamples_rows_with_replacement_on_each_side():
    seen = []

    def record(a, b):
        seen.append((a.copy(), b.copy()))
        return 0.0

    x = np.arange(10.0)[:, None]
    y = 100 + np.arange(7.0)[:, None]
    features_to_bootstrap_interval(x, y, record, rounds=5, seed=0)
    assert len(seen) == 6  # the full sample, then 5 rounds
    for a, b in seen[1:]:
        assert a.shape == x.shape and b.shape == y.shape
        assert set(a[:, 0]) <= set(x[:, 0]) and set(b[:, 0]) <= set(y[:, 0])
    assert any(len(set(a[:, 0])) < len(x) for a, _ in seen[1:])  # repeats: with replacement


def test_fixed_reference_and_several_values_at_once():
    x, y = _pair(80, seed=3)
    mu, sigma = features_to_statistics(x)
    calls = []

    def fd_to_fixed(a, b):
        calls.append(a)
        return statistics_to_fid(mu, sigma, *features_to_statistics(b))

    bi = features_to_bootstrap_interval(None, y, fd_to_fixed, rounds=20, seed=0)
    assert all(a is None for a in calls) and bi.low < bi.high
    both = features_to_bootstrap_intervals(x, y, lambda a, b: {"fd": _fd(a, b), "neg": -_fd(a, b)}, rounds=20)
    assert set(both) == {"fd", "neg"}
    assert both["neg"].low == pytest.approx(-both["fd"].high) and both["neg"].value == -both["fd"].value
    assert both["fd"].as_dict()["high"] == both["fd"].high


def test_bootstrap_bad_values_are_user_errors():
    x, y = _pair(10)
    with pytest.raises(GanProbeError, match="^ci must be between 0 and 1") as e:
        features_to_bootstrap_interval(x, y, _fd, ci=95)
    assert e.value.param == "ci"
    with pytest.raises(GanProbeError, match="^rounds must be"):
        features_to_bootstrap_interval(x, y, _fd, rounds=1)
    with pytest.raises(GanProbeError, match="^fake must be an N x d array"):
        features_to_bootstrap_interval(x, y[:1], _fd)


# ---------------------------------------------------------------- FD-infinity

def test_fd_infinity_recovers_the_closed_form_limit_of_two_gaussians():
    """Reference N(0, diag a) known exactly; generated N(0, diag b) sampled, N = 1000, d = 32. The true FD
    is closed form for commuting covariances: sum (sqrt a - sqrt b)^2. FD at N = 1000 is biased upwards
    by ~0.34 here. Over 200 seeds (d = 32, N = 1000; measured while writing this test), FD-infinity's
    error had mean -0.027 and std 0.107 for one set of samples: the mean of R = 10 independent sets has
    a standard error of 0.034, so a tolerance of 0.15 is ~4 standard errors plus the small residual
    curvature, and still well below the bias it removes."""
    d, n, runs = 32, 1000, 10
    r = np.random.default_rng(123)
    a, b = r.uniform(0.5, 2, d), r.uniform(0.5, 2, d)
    true_fd = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    errors, biases, slopes = [], [], []
    for s in range(runs):
        fake = np.random.default_rng(s).standard_normal((n, d)) * np.sqrt(b)
        res = statistics_to_fd_infinity(np.zeros(d), np.diag(a), fake, seed=s)
        assert res.sizes[0] == 100 and res.sizes[-1] == n and len(res.sizes) == 15
        errors.append(res.value - true_fd)
        biases.append(res.fds[-1] - true_fd)
        slopes.append(res.slope)
    assert np.mean(biases) > 0.2  # the bias is real at this N ...
    assert abs(np.mean(errors)) < 0.15  # ... and FD-infinity removes it
    assert abs(np.mean(errors)) < np.mean(biases) / 2
    assert np.mean(slopes) > 0  # FD falls as N grows


def test_fd_infinity_fit_and_subsets():
    x, y = _pair(400, d=6, seed=4)
    res = features_to_fd_infinity(x, y, num_points=5, seed=3)
    again = features_to_fd_infinity(x, y, num_points=5, seed=3)
    assert np.array_equal(res.fds, again.fds) and res.value == again.value  # deterministic for a seed
    assert not np.array_equal(res.fds[:-1], features_to_fd_infinity(x, y, num_points=5, seed=4).fds[:-1])
    np.testing.assert_array_equal(res.sizes, [40, 130, 220, 310, 400])
    # the full-size point is FD on all of y (a permutation of every row)
    assert res.fds[-1] == pytest.approx(_fd(x, y), rel=1e-9)
    # the line is the least-squares fit through the points
    slope, intercept = np.polyfit(1.0 / res.sizes, res.fds, 1)
    assert res.value == pytest.approx(intercept, rel=1e-9) and res.slope == pytest.approx(slope, rel=1e-9)
    assert res.as_dict()["sizes"] == [40, 130, 220, 310, 400]
    custom = features_to_fd_infinity(x, y, sizes=[50, 100, 400])
    np.testing.assert_array_equal(custom.sizes, [50, 100, 400])


def test_fd_infinity_sizes_and_errors():
    np.testing.assert_array_equal(fd_infinity_sizes(50000), np.linspace(5000, 50000, 15).astype(int))
    assert list(fd_infinity_sizes(20, num_points=3)) == [2, 11, 20]
    x, y = _pair(30)
    with pytest.raises(GanProbeError, match="^sizes must hold"):
        features_to_fd_infinity(x, y, sizes=[10, 31])
    with pytest.raises(GanProbeError, match="^min_size must be"):
        features_to_fd_infinity(x, y, min_size=30)
    with pytest.raises(GanProbeError, match="^num_points must be"):
        features_to_fd_infinity(x, y, num_points=1)


# ---------------------------------------------------------------- N against d

def test_sample_size_check_notes_and_warnings():
    ok = check_sample_size(5000, 2048)
    assert not ok.too_small and ok.warning is None and "N = 5000 for 2048-d features" in ok.note
    few = check_sample_size(500, 2048, "FD-DINOv2")
    assert few.too_small and "N < d" in few.warning and few.warning.startswith("FD-DINOv2 from 500 samples")
    kernel = check_sample_size(100, 2048, "KID", uses_covariance=False)
    assert not kernel.too_small and "interval" in kernel.note
    with pytest.warns(SmallSampleWarning, match="N < d"):
        assert warn_if_few_samples(10, 64) == check_sample_size(10, 64).warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_few_samples(64, 64) is None
