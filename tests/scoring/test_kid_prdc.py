"""KID, precision / recall, density / coverage against direct reference formulas.
"""

from __future__ import annotations

import numpy as np
import pytest

from gan_probe.metrics.kid import features_to_kid, unbiased_mmd2
from gan_probe.metrics.prdc import features_to_density_coverage, features_to_precision_recall


def test_kid_identical_sets_near_zero_different_sets_positive_and_seeded():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    y = x + 1.0
    same = features_to_kid(x, x, subsets=20, subset_size=100, seed=0)
    diff = features_to_kid(x, y, subsets=20, subset_size=100, seed=0)
    assert abs(same[0]) < 0.02 * diff[0]
    assert features_to_kid(x, y, subsets=20, subset_size=100, seed=0) == diff
    # the unbiased MMD^2 formula against a direct double loop
    a, b = x[:6], y[:6]
    k = lambda u, v: (u @ v / 16 + 1) ** 3  # noqa: E731
    ref = (sum(k(a[i], a[j]) for i in range(6) for j in range(6) if i != j) / 30
           + sum(k(b[i], b[j]) for i in range(6) for j in range(6) if i != j) / 30
           - 2 * np.mean([k(a[i], b[j]) for i in range(6) for j in range(6)]))
    assert unbiased_mmd2(a, b) == pytest.approx(ref, rel=1e-5)


def _prdc_reference(real, fake, k_pr=3, k_dc=5):
    from scipy.spatial.distance import cdist

    def radii(x, k):
        d = cdist(x, x)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    drf = cdist(real, fake)
    precision = (drf < radii(real, k_pr)[:, None]).any(0).mean()
    recall = (drf < radii(fake, k_pr)[None, :]).any(1).mean()
    r5 = radii(real, k_dc)
    density = (drf < r5[:, None]).sum(0).mean() / k_dc
    coverage = (drf.min(1) < r5).mean()
    return precision, recall, density, coverage


def test_precision_recall_direction_and_exact_values():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((300, 8))
    collapsed = real[0] + 0.01 * rng.standard_normal((300, 8))  # one mode
    p, r = features_to_precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.05
    d, c = features_to_density_coverage(real, collapsed)
    assert c < 0.05
    spread = 4 * rng.standard_normal((300, 8))  # covers everything, mostly off-manifold
    p2, r2 = features_to_precision_recall(real, spread)
    assert p2 < 0.5 and r2 > 0.9
    for fake in (collapsed, spread):
        ref = _prdc_reference(real.astype(np.float32), fake.astype(np.float32))
        got = features_to_precision_recall(real, fake) + features_to_density_coverage(real, fake)
        np.testing.assert_allclose(got, ref, atol=1 / 300 + 1e-9)

