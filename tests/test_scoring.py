"""Scoring: FID / IS / KID / precision-recall / density-coverage, sources, cache, CLI.

The Inception weights are a seeded stand-in (conftest's ``inception_weights``), handed to
both gan-probe and pytorch-fid, so their numbers can be compared offline. Image sets are
tiny: every Inception forward costs ~0.1 s on our 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_probe.errors import GanProbeError
from gan_probe.metrics.fid import (StatisticsAccumulator, features_to_statistics, statistics_to_fid,
                                   trace_sqrt_product)
from gan_probe.metrics.inception_score import logits_to_inception_score
from gan_probe.metrics.kid import features_to_kid, unbiased_mmd2
from gan_probe.metrics.prdc import features_to_density_coverage, features_to_precision_recall
from cli_runner import run_cli

N_IMAGES = 6


def _write_images(folder: Path, n: int, seed: int, size: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring_images")
    return _write_images(root / "real", N_IMAGES, 0), _write_images(root / "fake", N_IMAGES, 1)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GAN_PROBE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache


def _pytorch_fid_model(weights: Path, monkeypatch, dims: int = 2048):
    import pytorch_fid.inception as pfi

    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: torch.load(weights, weights_only=True))
    return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]]).eval()


def _options(weights, **kw):
    from gan_probe.metrics.score import ScoreOptions

    base = dict(weights=weights, device="cpu", num_workers=0, batch_size=N_IMAGES, progress=False)
    base.update(kw)
    return ScoreOptions(**base)


def _assert_user_error(code, err, *words):
    assert code == 1
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err


# ---------------------------------------------------------------- pytorch-fid agreement

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


def test_64d_features_and_unbiased_logits_match_pytorch_fid(folders, inception_weights, monkeypatch):
    import pytorch_fid.inception as pfi

    from gan_probe.features.inception import InceptionExtractor, to_inception_input
    from gan_probe.metrics.sources import open_source

    batch = next(open_source(folders[0]).batches(3))[:3]
    x01 = batch.float() / 255
    model = _pytorch_fid_model(inception_weights, monkeypatch, dims=64)
    with torch.no_grad():
        theirs64 = torch.nn.functional.adaptive_avg_pool2d(model(x01)[0], 1).flatten(1)
        full = pfi.fid_inception_v3().eval()
        x = 2 * torch.nn.functional.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False) - 1
        logits_with_bias = full(x)
    ours64 = InceptionExtractor(inception_weights, "cpu", 64)(to_inception_input(batch)).features
    torch.testing.assert_close(ours64, theirs64, rtol=1e-4, atol=1e-5)
    out = InceptionExtractor(inception_weights, "cpu", 2048)(to_inception_input(batch), logits=True)
    unbiased = (logits_with_bias - full.fc.bias).double()
    assert out.logits.dtype == torch.float64 and out.logits.shape == (3, 1008)
    torch.testing.assert_close(out.logits, unbiased, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- Fréchet distance

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


def test_fid_rejects_mismatched_statistics():
    with pytest.raises(GanProbeError, match="do not match"):
        statistics_to_fid(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ---------------------------------------------------------------- IS, KID, PR, DC

def test_inception_score_uniform_is_one_and_k_classes_is_k():
    assert logits_to_inception_score(np.zeros((50, 1008)))[0] == pytest.approx(1.0)
    k = 7
    logits = np.zeros((70, 1008))
    logits[np.arange(70), np.arange(70) % k] = 1000.0  # one-hot in float64
    mean, std = logits_to_inception_score(logits)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_std_uses_ddof_0():
    logits = np.zeros((20, 10))
    logits[np.arange(10), np.arange(10) % 2] = 1000.0  # first half: 2 classes per split
    logits[10 + np.arange(10), 0] = 1000.0  # second half: 1 class
    mean, std = logits_to_inception_score(logits, splits=2)
    assert mean == pytest.approx(1.5) and std == pytest.approx(np.std([2.0, 1.0]))  # 0.5, not 0.707


def test_inception_score_equals_torch_fidelity_formula():
    """torch-fidelity's ``isc`` computation (softmax, then per split exp(mean KL(p(y|x) || p(y))),
    std without Bessel's correction), written out in torch float64, on unshuffled samples."""
    logits = np.random.default_rng(6).normal(scale=4.0, size=(230, 1008))
    p = torch.from_numpy(logits).softmax(dim=1)
    scores = []
    for chunk in p.chunk(10, dim=0):  # 23 each: the same splits as ours when 10 divides N
        py = chunk.mean(dim=0, keepdim=True)
        scores.append((chunk * (chunk.log() - py.log())).sum(dim=1).mean().exp())
    scores = torch.stack(scores)
    mean, std = logits_to_inception_score(logits)
    assert mean > 2.0
    assert mean == pytest.approx(scores.mean().item(), rel=1e-12)
    assert std == pytest.approx(scores.std(unbiased=False).item(), rel=1e-9)


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


# ---------------------------------------------------------------- npz files

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


# ---------------------------------------------------------------- sources

def test_folder_source_recursive_any_case_modes_and_mixed_sizes(tmp_path):
    from gan_probe.features.inception import to_inception_input
    from gan_probe.metrics.sources import open_source

    root = tmp_path / "mixed"
    (root / "sub").mkdir(parents=True)
    Image.new("L", (20, 20), 100).save(root / "gray.PNG")
    Image.new("RGBA", (16, 24), (10, 20, 30, 0)).save(root / "sub" / "alpha.png")
    Image.new("P", (32, 32), 3).save(root / "sub" / "palette.GIF")
    Image.new("RGB", (40, 40), (1, 2, 3)).save(root / "x.JPG")
    (root / "notes.txt").write_text("not an image")
    src = open_source(root)
    assert src.kind == "folder" and src.n == 4
    (batch,) = list(src.batches(8))
    assert isinstance(batch, list) and all(im.dtype == torch.uint8 and im.shape[0] == 3 for im in batch)
    gray = next(im for im in batch if im.shape[1:] == (20, 20))
    assert torch.all(gray == 100)
    x = to_inception_input(batch)
    assert x.shape == (4, 3, 299, 299) and x.min() >= -1 and x.max() <= 1


def test_checkpoint_source_equals_sampled_pngs(tiny_checkpoint, tmp_path):
    from gan_probe.metrics.sources import open_source
    from gan_probe.sampling import sample_to_folder

    src = open_source(tiny_checkpoint, n=12, seed=3)
    got = torch.cat(list(src.batches(5)))
    assert got.shape == (12, 3, 32, 32) and got.dtype == torch.uint8
    sample_to_folder(tiny_checkpoint, tmp_path / "s", 12, seed=3)
    pngs = torch.cat(list(open_source(tmp_path / "s").batches(12)))
    assert torch.equal(got, pngs)
    assert open_source(tiny_checkpoint, n=12, seed=4).fingerprint != src.fingerprint


def test_dataset_source_by_name():
    from gan_probe.metrics.sources import open_source

    src = open_source("digits:test")
    assert src.kind == "dataset" and src.n == 450
    first = next(src.batches(16))
    assert first.shape == (16, 3, 32, 32) and first.dtype == torch.uint8


# ---------------------------------------------------------------- cache

class _CountingExtractor:
    """Stands in for Inception in cache tests: mean colour features, counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, logits=False):
        from gan_probe.features.inception import InceptionOutput

        self.calls += 1
        f = torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)
        return InceptionOutput(f, torch.zeros(len(x), 1008, dtype=torch.float64) if logits else None)


def test_cache_hit_equals_recomputation_and_survives_a_killed_write(folders, tmp_path, monkeypatch):
    from gan_probe.metrics import extract
    from gan_probe.metrics.extract import ExtractOptions, source_to_features
    from gan_probe.metrics.sources import open_source

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"stand-in")
    opts = ExtractOptions(weights=weights, dims=2048, num_workers=0, batch_size=4, progress=False)
    ex = _CountingExtractor()
    src = open_source(folders[0])
    first = source_to_features(src, opts, lambda: ex, need_features=True)
    calls = ex.calls
    again = source_to_features(open_source(folders[0]), opts, lambda: ex, need_features=True)
    assert ex.calls == calls and again.from_cache and not first.from_cache
    np.testing.assert_array_equal(again.sigma, first.sigma)
    np.testing.assert_array_equal(again.features, first.features)
    # a killed write leaves no entry (and no temp file); the next run recomputes
    key = extract.statistics_cache_key(src, opts)
    for p in Path(tmp_path / "cache").rglob(f"{key}.npz"):
        p.unlink()

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        source_to_features(open_source(folders[0]), opts, lambda: ex)
    monkeypatch.undo()
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and key in p.name]
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    # a truncated entry is a miss, not a wrong answer
    redo = source_to_features(open_source(folders[0]), opts, lambda: ex)
    entry = next((tmp_path / "cache" / extract.STATS_KIND).glob(f"{key}.npz"))
    entry.write_bytes(entry.read_bytes()[:100])
    calls = ex.calls
    redo2 = source_to_features(open_source(folders[0]), opts, lambda: ex)
    assert ex.calls > calls and not redo2.from_cache
    np.testing.assert_allclose(redo2.sigma, first.sigma, rtol=1e-12)
    np.testing.assert_allclose(redo.mu, first.mu, rtol=1e-12)
    # other dims or another weights file: another key
    assert extract.statistics_cache_key(src, ExtractOptions(weights=weights, dims=768)) != key


# ---------------------------------------------------------------- CLI

def test_cli_score_checkpoint_against_folder_all_metrics(run_copy, folders, inception_weights, capsys):
    code, out, err = run_cli(["score", run_copy, "--ref", folders[0], "--metrics", "fid,is,kid,pr,dc", "--n", 10,
                              "--json", "--inception-weights", inception_weights, "--num-workers", 0,
                              "--device", "cpu", "--dims", 64], capsys)
    assert code == 0, err
    r = json.loads(out)
    for key in ("fid", "is", "is_std", "kid", "kid_std", "precision", "recall", "density", "coverage"):
        assert np.isfinite(r[key]), key
    assert r["fid"] > 0 and r["is"] >= 1.0 and r["gen"]["n"] == 10 and r["ref"]["n"] == N_IMAGES
    assert r["gen"]["seed"] == 0 and any("N < d" in w for w in r["warnings"])
    # stand-in weights are never passed off as pytorch-fid's
    assert r["protocol"]["reference_weights"] is False and "NON-REFERENCE" in r["protocol"]["extractor"]
    assert any("not pytorch-fid's weights file" in w for w in r["warnings"])
    saved = json.loads((run_copy / "analysis" / "score" / "summary.json").read_text())
    assert saved["fid"] == r["fid"]


def test_cli_fid_table_skip_bad_and_cache(tmp_path, inception_weights, capsys):
    folder = _write_images(tmp_path / "imgs", 3, 7)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    w = ["--inception-weights", inception_weights, "--dims", 64]
    code, out, err = run_cli(["fid", folder, folder, "--num-workers", 0] + w, capsys)
    _assert_user_error(code, err, "broken.png", "--skip-bad")
    code, out, err = run_cli(["fid", folder, folder, "--skip-bad", "--num-workers", 1,
                              "--save-stats", tmp_path / "s.npz"] + w, capsys)
    assert code == 0, err
    assert "FID" in out and "N = 3" in out and "299" in out and "cached" in out  # 2nd side: a cache hit
    assert "broken.png" in err
    code, out, _ = run_cli(["fid", tmp_path / "s.npz", folder, "--skip-bad", "--json"] + w, capsys)
    assert code == 0 and json.loads(out)["fid"] == pytest.approx(0.0, abs=1e-6)


def test_cli_user_errors(tmp_path, folders, inception_weights, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_npz = tmp_path / "bad.npz"
    np.savez(bad_npz, m=np.zeros(3))
    not_zip = tmp_path / "junk.npz"
    not_zip.write_bytes(b"nope")
    small = tmp_path / "small.npz"
    np.savez(small, mu=np.zeros(3), sigma=np.eye(3))
    w = ["--inception-weights", inception_weights]
    cases = [
        (["fid", tmp_path / "missing", folders[0]], ["not found"]),
        (["fid", empty, folders[0]] + w, ["no images", "empty"]),
        (["fid", folders[0], folders[1]], ["pt_inception-2015-12-05-6726825d.pth", "--download", "https://"]),
        (["fid", folders[0], folders[1], "--inception-weights", tmp_path / "nope.pth"], ["nope.pth"]),
        (["fid", folders[0], folders[1], "--inception-weights", not_zip], ["junk.npz", "not a readable"]),
        (["fid", bad_npz, small], ["bad.npz", "mu"]),
        (["fid", not_zip, small], ["junk.npz"]),
        (["fid", small, tmp_path / "absent.npz"], ["absent.npz"]),
        (["fid", small, folders[0]] + w, ["3-d"]),
        (["score", folders[0], "--metrics", "fid"] + w, ["--ref"]),
        (["score", folders[0], "--ref", folders[1], "--metrics", "fid,xyz"] + w, ["xyz"]),
        (["score", small, "--ref", small, "--metrics", "kid"] + w, ["images"]),
        (["fid", folders[0], folders[1], "--dims", 100] + w, ["--dims"]),
        (["fid", "no-such-dataset", folders[0]] + w, ["no-such-dataset"]),
    ]
    for args, words in cases:
        code, _, err = run_cli(args, capsys)
        _assert_user_error(code, err, *words[:1])
        assert any(word in err for word in words), (args, err)


def test_weights_lookup_order(tmp_path, monkeypatch):
    from gan_probe.features.inception import WEIGHTS_FILENAME, find_inception_weights, hub_weights_path

    hub = hub_weights_path()
    assert hub.name == WEIGHTS_FILENAME and str(tmp_path) in str(hub)
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert find_inception_weights() == hub
    env = tmp_path / "env.pth"
    env.write_bytes(b"y")
    monkeypatch.setenv("GAN_PROBE_INCEPTION_WEIGHTS", str(env))
    assert find_inception_weights() == env
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"z")
    assert find_inception_weights(explicit) == explicit


class _FakeResponse:
    """What ``urlopen`` returns, serving ``payload`` (and raising ``fail_after`` once it is sent)."""

    def __init__(self, payload: bytes, fail_after: BaseException | None = None):
        import io

        self.body, self.fail_after = io.BytesIO(payload), fail_after
        self.length = len(payload)

    def info(self):
        from email.message import Message

        meta = Message()
        meta["Content-Length"] = str(self.length)
        return meta

    def read(self, n=-1):
        block = self.body.read(n)
        if not block and self.fail_after is not None:
            raise self.fail_after
        return block

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_sha256_and_writes_atomically(tmp_path, monkeypatch):
    import hashlib
    import socket
    import urllib.error

    from gan_probe.features import inception

    payload = b"not the real weights"
    assert not hashlib.sha256(payload).hexdigest().startswith(inception.WEIGHTS_SHA256_PREFIX)
    assert hasattr(torch.hub, "urlopen")  # torch hub's own download, fed offline
    monkeypatch.setattr(torch.hub, "urlopen", lambda request: _FakeResponse(payload))
    dest = tmp_path / "hub" / inception.WEIGHTS_FILENAME
    with pytest.raises(GanProbeError, match="SHA-256"):
        inception.download_inception_weights(dest, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.tmp"))
    assert list(dest.parent.iterdir()) == []  # no .partial file either
    # a network error is one line, and leaves nothing behind; so does an interrupted transfer
    for failure in (urllib.error.URLError("no network"), KeyboardInterrupt()):
        monkeypatch.setattr(torch.hub, "urlopen", lambda request: _FakeResponse(payload, failure))
        with pytest.raises((GanProbeError, KeyboardInterrupt)) as e:
            inception.download_inception_weights(dest, progress=False)
        if isinstance(failure, OSError):
            assert e.type is GanProbeError and "no network" in str(e.value) and "\n" not in str(e.value)
        assert list(dest.parent.iterdir()) == []
    monkeypatch.setattr(torch.hub, "urlopen", lambda request: _FakeResponse(payload))
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", hashlib.sha256(payload).hexdigest()[:8])
    assert inception.download_inception_weights(dest, progress=False).read_bytes() == payload
    assert list(dest.parent.iterdir()) == [dest]
    assert socket.getdefaulttimeout() is None  # the download's timeout does not outlive it


def test_inception_feature_space_from_registry(inception_weights):
    from gan_probe.features import get_feature_space

    space = get_feature_space("inception", device="cpu", weights=inception_weights)
    assert space.name == "inception" and space.dim == 2048
    f = space(torch.zeros(2, 1, 16, 16))
    assert f.shape == (2, 2048) and f.dtype == torch.float32
    torch.testing.assert_close(f[0], f[1])


def test_zip_of_wrong_kind_is_a_bad_weights_file(tmp_path, capsys, folders):
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    assert zipfile.is_zipfile(wrong)
    code, _, err = run_cli(["fid", folders[0], folders[1], "--inception-weights", wrong], capsys)
    _assert_user_error(code, err, "FID Inception weights")


def test_reference_weights_are_recognised_by_their_hash(inception_weights, monkeypatch):
    from gan_probe.features import inception as inc

    assert not inc.is_reference_weights(inception_weights)  # the stand-in file
    monkeypatch.setattr(inc, "WEIGHTS_SHA256_PREFIX", inc.weights_sha256(inception_weights)[:8])
    assert inc.is_reference_weights(inception_weights)
