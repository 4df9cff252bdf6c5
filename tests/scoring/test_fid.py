"""FID: gan-probe against pytorch-fid, the Fréchet distance against a float64 reference,
streaming statistics, and the npz statistics files.

The Inception weights are a seeded stand-in (conftest's ``inception_weights``), handed to
both gan-probe and pytorch-fid, so their numbers can be compared offline. Image sets are
tiny: every Inception forward costs ~0.1 s on our 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from gan_probe.errors import GanProbeError
from gan_probe.metrics.fid import (StatisticsAccumulator, features_to_statistics, statistics_to_fid,
                                   trace_sqrt_product)
from scoring_helpers import N_IMAGES, _options, _pytorch_fid_model


@pytest.mark.slow
def test_fid_equals_pytorch_fid_on_same_weights(folders, inception_weights, monkeypatch):
    from pytorch_fid.fid_score import calculate_activation_statistics

    from gan_probe.metrics.score import compute_scores

    model = _pytorch_fid_model(inception_weights, monkeypatch)
    stats = [calculate_activation_statistics(sorted(f.glob("*.png")), model, N_IMAGES, 2048, "cpu", 0)
             for f in folders]
    theirs = statistics_to_fid(*stats[1], *stats[0])
    ours = compute_scores(folders[1], folders[0], ["fid"], _options(inception_weights, cache=False))
    assert theirs > 1.0  # the stand-in weights give informative features
    assert ours["fid"] == pytest.approx(theirs, rel=1e-4)
    assert ours["protocol"]["dims"] == 2048 and "299" in ours["protocol"]["resize"]


def _reference_fid(mu1, s1, mu2, s2):
    ev = np.linalg.eigvals(s1 @ s2).astype(np.complex128)
    tr = np.sqrt(np.clip(ev.real, 0, None)).sum()
    d = mu1 - mu2
    return d @ d + np.trace(s1) + np.trace(s2) - 2 * tr


@pytest.mark.parametrize("n1,n2", [(2, 2), (5, 3000), (20, 40), (33, 33), (500, 64), (5000, 5000)])
def test_frechet_matches_float64_reference(n1, n2):
    d = 32
    rng = np.random.default_rng(n1 * 7 + n2)
    a = rng.standard_normal((n1, d)) @ rng.standard_normal((d, d))
    b = rng.standard_normal((n2, d)) * 1.5 + 0.3
    mu1, s1 = features_to_statistics(a)
    mu2, s2 = features_to_statistics(b)
    ours = statistics_to_fid(mu1, s1, mu2, s2)
    ref = _reference_fid(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-7, abs=1e-6 * (np.trace(s1) + np.trace(s2)))
    if n1 > d and n2 > d:  # full rank: scipy's sqrtm agrees too
        from scipy.linalg import sqrtm

        tr = np.trace(sqrtm(s1 @ s2)).real
        assert trace_sqrt_product(s1, s2) == pytest.approx(tr, rel=1e-9)
        from pytorch_fid.fid_score import calculate_frechet_distance

        try:  # pytorch-fid's own routine (scipy.linalg.sqrtm(disp=False): a TypeError from SciPy 1.18)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                assert ours == pytest.approx(calculate_frechet_distance(mu1, s1, mu2, s2), rel=1e-7)
        except TypeError:
            pass


def test_singular_covariances_give_finite_real_fid():
    d = 64
    rng = np.random.default_rng(0)
    low_rank = rng.standard_normal((200, 3)) @ rng.standard_normal((3, d))  # rank 3
    mu1, s1 = features_to_statistics(low_rank)
    mu2, s2 = features_to_statistics(rng.standard_normal((10, d)))  # N < d
    fid = statistics_to_fid(mu1, s1, mu2, s2)
    assert np.isfinite(fid) and fid == pytest.approx(_reference_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_equal_covariances_give_mean_distance():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 16)) @ rng.standard_normal((16, 16))
    mu, s = features_to_statistics(x)
    assert statistics_to_fid(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9 * np.trace(s))
    shift = rng.standard_normal(16)
    assert statistics_to_fid(mu, s, mu + shift, s) == pytest.approx(shift @ shift, rel=1e-7)


def test_streaming_statistics_equal_numpy_cov():
    x = np.random.default_rng(2).standard_normal((103, 7)) * 50 + 1e4  # large offset: no cancellation
    acc = StatisticsAccumulator()
    for i in range(0, 103, 10):
        acc.update(x[i:i + 10])
    mu, s = acc.statistics()
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s, np.cov(x, rowvar=False), rtol=1e-9)


def test_streaming_statistics_from_tensors_and_merged_parts():
    """Tensors are summed where they are (the GPU path, here on the CPU); a tensor-fed part merges
    into a numpy-fed one and the other way round, and both equal np.cov of the stacked rows."""
    import torch

    x = np.random.default_rng(3).standard_normal((61, 9)) * 20 - 3e3
    by_tensor = StatisticsAccumulator()
    for i in range(0, 61, 8):
        by_tensor.update(torch.from_numpy(x[i:i + 8]).float())
    rows = x.astype(np.float32).astype(np.float64)  # what the float32 tensors held
    mu, s = by_tensor.statistics()
    np.testing.assert_allclose(mu, rows.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s, np.cov(rows, rowvar=False), rtol=1e-9)
    first, second = StatisticsAccumulator(), StatisticsAccumulator()
    first.update(rows[:25])
    second.update(torch.from_numpy(rows[25:]))
    for a, b in ((first, second), (second, first)):
        total = StatisticsAccumulator()
        total.merge(a)
        total.merge(b)
        mu, s = total.statistics()
        np.testing.assert_allclose(mu, rows.mean(0), rtol=1e-12)
        np.testing.assert_allclose(s, np.cov(rows, rowvar=False), rtol=1e-9)
    in_tensors = StatisticsAccumulator()  # numpy moments added to sums kept in tensors
    in_tensors.update(torch.from_numpy(rows[:25]))
    in_tensors.add_moments(*_fed(rows[25:]).moments())
    np.testing.assert_allclose(in_tensors.statistics()[1], np.cov(rows, rowvar=False), rtol=1e-9)
    n, _, m2 = first.moments()
    np.testing.assert_allclose(m2, m2.T, rtol=0, atol=0)  # the kept triangle mirrored exactly


def _fed(rows: np.ndarray) -> StatisticsAccumulator:
    acc = StatisticsAccumulator()
    acc.update(rows)
    return acc


def test_fid_rejects_mismatched_statistics():
    with pytest.raises(GanProbeError, match="do not match"):
        statistics_to_fid(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_npz_round_trip_with_pytorch_fid(tmp_path, monkeypatch):
    from pytorch_fid.fid_score import compute_statistics_of_path

    from gan_probe.metrics.statsfile import load_statistics, save_statistics

    rng = np.random.default_rng(5)
    mu, s = features_to_statistics(rng.standard_normal((50, 6)))
    ours = save_statistics(tmp_path / "ours.npz", mu, s)
    m2, s2 = compute_statistics_of_path(str(ours), None, 1, 6, "cpu")  # pytorch-fid reads ours
    np.testing.assert_array_equal(m2, mu)
    np.testing.assert_array_equal(s2, s)
    theirs = tmp_path / "theirs.npz"
    np.savez_compressed(theirs, mu=mu + 1, sigma=s)  # pytorch-fid's save_fid_stats format
    m3, s3 = load_statistics(theirs)
    np.testing.assert_array_equal(m3, mu + 1)
    code = subprocess.run([sys.executable, "-c",
                           "import sys; from gan_probe.cli import main\n"
                           "try: main(sys.argv[1:])\n"
                           "except SystemExit: pass\n"
                           "assert 'torch' not in sys.modules, 'torch imported for two npz files'",
                           "fid", str(ours), str(theirs), "--json"], capture_output=True, text=True)
    assert code.returncode == 0, code.stderr
    result = json.loads(code.stdout)
    assert result["fid"] == pytest.approx(len(mu) * 1.0, rel=1e-6)  # equal covariances, mean shift of 1 per dim

