"""The metric registry (one registration adds a metric to the library, `score --help`, `--json` and
the table), what each side extracts, `fid A B`'s sides, the feature-space and dataset registries,
and library errors that name library parameters."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "scoring"))
from cli_runner import run_cli  # noqa: E402
from scoring_helpers import _write_images  # noqa: E402

from gan_probe.errors import GanProbeError  # noqa: E402
from gan_probe.metrics import registry  # noqa: E402
from gan_probe.metrics.registry import MetricRow, register_metric, side_needs  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps help and tables at the terminal width
    monkeypatch.setattr(registry, "METRICS", dict(registry.METRICS))  # registrations stay in the test


def _flat(text: str) -> str:
    """Help/table text without rich's box characters and line wrapping."""
    return " ".join(re.sub(r"[│┃║]", " ", text).split())


def _npz(path: Path, mu, sigma=None) -> Path:
    mu = np.asarray(mu, np.float64)
    np.savez(path, mu=mu, sigma=np.eye(len(mu)) if sigma is None else sigma)
    return path


def _mean_gap(gen, ref, ctx):
    return {"mean_gap": float(np.abs(gen.mu - ref.mu).sum())}


# ---------------------------------------------------------------- one registration, everywhere

def test_one_registration_reaches_help_json_and_table(tmp_path, capsys):
    register_metric("mean-gap", _mean_gap, help="sum of |mu_gen - mu_ref|", needs_ref=True,
                    consumes={"statistics"}, rows=[MetricRow("mean gap", "mean_gap", fmt=".3f")], default=False)
    code, out, err = run_cli(["score", "--help"], capsys)
    assert code == 0, err
    help_text = _flat(out)
    assert "mean-gap (sum of |mu_gen - mu_ref|)" in help_text
    assert "fid (Fréchet Inception Distance)" in help_text and "dc (density/coverage, k=5)" in help_text
    assert "(inception: fid,is,kid,pr,dc)" in help_text  # default=False keeps it out of the default set
    assert "[default:" not in help_text.split("--metrics")[1].split("--")[0]  # no value forced on other spaces

    a, b = _npz(tmp_path / "a.npz", [0, 0, 0]), _npz(tmp_path / "b.npz", [2, 2, 2])
    code, out, err = run_cli(["score", a, "--ref", b, "--metrics", "mean-gap,fid", "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["metrics"] == ["mean-gap", "fid"]
    assert r["mean_gap"] == pytest.approx(6.0) and r["fid"] == pytest.approx(12.0)
    assert list(r)[-2:] == ["fid", "mean_gap"]  # results come in registry order

    code, out, err = run_cli(["score", a, "--ref", b, "--metrics", "mean-gap"], capsys)
    assert code == 0, err
    assert "mean gap 6.000" in _flat(out) and "FID" not in out

    code, _, err = run_cli(["score", a, "--metrics", "mean-gap"], capsys)
    assert code == 1 and "--ref is required by mean-gap" in err


def test_a_metric_reading_features_asks_for_images_by_name(tmp_path, capsys):
    register_metric("feat-norm", lambda gen, ref, ctx: {"feat_norm": 0.0}, help="", needs_ref=False,
                    consumes={"features"}, rows=[])
    a = _npz(tmp_path / "a.npz", [0, 0])
    from gan_probe.metrics.score import compute_scores

    with pytest.raises(GanProbeError, match=r"a\.npz holds only statistics .*: feat-norm needs images"):
        compute_scores(a, None, ["feat-norm"])  # before looking for any weights
    code, _, err = run_cli(["score", a, "--ref", a, "--metrics", "kid,pr"], capsys)
    assert code == 1 and "kid, pr need images" in err and len(err.strip().splitlines()) == 1


def test_sides_extract_only_what_the_chosen_metrics_consume():
    assert side_needs(["fid"], "gen") == side_needs(["fid"], "ref") == {"statistics"}
    assert side_needs(["is"], "gen") == {"logits"} and side_needs(["is"], "ref") == frozenset()
    assert side_needs(["fid", "kid", "pr", "dc"], "ref") == {"statistics", "features"}
    assert side_needs(["is", "kid"], "gen") == {"logits", "features"}
    register_metric("asym", lambda g, r, c: {}, help="", needs_ref=True, consumes={"features"},
                    ref_consumes={"statistics"}, rows=[])
    assert side_needs(["asym"], "gen") == {"features"} and side_needs(["asym"], "ref") == {"statistics"}


def test_registration_mistakes_are_programming_errors():
    with pytest.raises(ValueError, match="already registered"):
        register_metric("fid", _mean_gap, help="", needs_ref=True, consumes={"statistics"}, rows=[])
    with pytest.raises(ValueError, match="consumes"):
        register_metric("x", _mean_gap, help="", needs_ref=True, consumes={"pixels"}, rows=[])
    with pytest.raises(ValueError, match="needs_ref"):
        register_metric("y", _mean_gap, help="", needs_ref=False, consumes={"logits"}, ref_consumes={"features"},
                        rows=[])
    with pytest.raises(ValueError, match="name"):
        register_metric("a,b", _mean_gap, help="", needs_ref=False, consumes=(), rows=[])


def test_builtin_metrics_compute_what_their_formulas_give_in_registry_order():
    from gan_probe.metrics.fid import features_to_statistics, statistics_to_fid
    from gan_probe.metrics.inception_score import logits_to_inception_score
    from gan_probe.metrics.kid import features_to_kid
    from gan_probe.metrics.prdc import features_to_density_coverage, features_to_precision_recall
    from gan_probe.metrics.score import ScoreOptions, results_to_scores

    rng = np.random.default_rng(0)

    def side(x, name):
        mu, sigma = features_to_statistics(x)
        return SimpleNamespace(mu=mu, sigma=sigma, features=x.astype(np.float32), n=len(x),
                               logits=rng.standard_normal((len(x), 12)), source=SimpleNamespace(spec=name))

    gen, ref = side(rng.standard_normal((12, 16)) + 0.5, "gen"), side(rng.standard_normal((50, 16)), "ref")
    opts = ScoreOptions(device="cpu", kid_subsets=5, kid_subset_size=20, seed=3)
    notes: list[str] = []
    got = results_to_scores(gen, ref, ["dc", "kid", "is", "pr", "fid"], opts, notes)
    assert list(got) == ["fid", "is", "is_std", "kid", "kid_std", "kid_subset_size", "precision", "recall",
                         "density", "coverage"]
    assert got["fid"] == statistics_to_fid(gen.mu, gen.sigma, ref.mu, ref.sigma)
    assert (got["is"], got["is_std"]) == logits_to_inception_score(gen.logits)
    assert (got["kid"], got["kid_std"]) == features_to_kid(ref.features, gen.features, 5, 20, 3)
    assert got["kid_subset_size"] == 12
    assert (got["precision"], got["recall"]) == features_to_precision_recall(ref.features, gen.features, 3)
    assert (got["density"], got["coverage"]) == features_to_density_coverage(ref.features, gen.features, 5)
    assert len(notes) == 1 and notes[0].startswith("gen: FID from 12 samples in 16 dimensions (N < d)")


def test_kid_says_why_its_spread_is_zero_when_every_subset_is_the_whole_set():
    from types import SimpleNamespace

    from gan_probe.metrics.score import ScoreOptions, results_to_scores

    rng = np.random.default_rng(1)
    side = [SimpleNamespace(features=rng.standard_normal((n, 8)).astype(np.float32), n=n, mu=None, sigma=None,
                            source=SimpleNamespace(spec=name)) for n, name in ((30, "gen"), (30, "ref"))]
    notes: list[str] = []
    got = results_to_scores(side[0], side[1], ["kid"], ScoreOptions(device="cpu", kid_subsets=4), notes)
    assert got["kid_std"] == 0.0 and got["kid_subset_size"] == 30
    assert notes == ["KID: both sides have N = 30 <= the subset size 1000, so every subset is the whole set "
                     "and its ± is 0; for an interval ask for ci"]


def test_table_rows_keep_their_labels_and_formats():
    from gan_probe.metrics.registry import table_rows

    result = {"fid": 1.234567, "is": 2.5, "is_std": 0.25, "kid": 0.00123456, "kid_std": 0.0000123,
              "kid_subset_size": 7, "precision": 0.5, "recall": 0.75, "density": 1.05, "coverage": 1.0}
    assert table_rows(result) == [("FID", "1.2346"), ("Inception Score", "2.5000 ± 0.2500"),
                                  ("KID", "0.001235 ± 0.000012"), ("precision (k=3)", "0.5000"),
                                  ("recall (k=3)", "0.7500"), ("density (k=5)", "1.0500"),
                                  ("coverage (k=5)", "1.0000")]
    assert table_rows({"fid": 3.0}) == [("FID", "3.0000")]


# ---------------------------------------------------------------- fid A B: A is the GEN side

def test_fid_a_b_calls_compute_fid_with_a_as_gen_and_saves_a_statistics(tmp_path, inception_weights, capsys,
                                                                       monkeypatch):
    import torch

    from gan_probe.features.inception import InceptionExtractor, to_inception_input
    from gan_probe.metrics import score
    from gan_probe.metrics.fid import features_to_statistics, statistics_to_fid
    from gan_probe.metrics.sources import open_source

    a, b = _write_images(tmp_path / "a", 3, 0, size=24), _write_images(tmp_path / "b", 4, 1, size=24)
    calls = []
    real_compute_fid = score.compute_fid

    def spy(*args, **kwargs):
        calls.append(args)
        return real_compute_fid(*args, **kwargs)

    monkeypatch.setattr(score, "compute_fid", spy)
    code, out, err = run_cli(["fid", a, b, "--save-stats", tmp_path / "a_stats.npz", "--json", "--dims", 64,
                              "--inception-weights", inception_weights, "--num-workers", 0, "--device", "cpu"],
                             capsys)
    assert code == 0, err
    assert len(calls) == 1 and calls[0][:2] == (str(a), str(b))
    r = json.loads(out)
    assert r["gen"]["source"] == str(a) and r["gen"]["n"] == 3
    assert r["ref"]["source"] == str(b) and r["ref"]["n"] == 4

    extractor = InceptionExtractor(inception_weights, "cpu", 64)  # the oracle: A's features, alone
    stats = {}
    for name, folder in (("a", a), ("b", b)):
        with torch.no_grad():
            feats = np.concatenate([extractor(to_inception_input(x)).features.numpy()
                                    for x in open_source(folder).batches(8)])
        stats[name] = features_to_statistics(feats)
    with np.load(tmp_path / "a_stats.npz") as z:
        mu, sigma = z["mu"], z["sigma"]
    np.testing.assert_allclose(mu, stats["a"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, stats["a"][1], rtol=1e-4, atol=1e-6)
    assert not np.allclose(mu, stats["b"][0], rtol=1e-3)  # B's statistics differ: the test can tell sides apart
    assert r["fid"] == pytest.approx(statistics_to_fid(*stats["a"], *stats["b"]), rel=1e-4)

    # the library call reads the same way: compute_fid(A, B) -> gen is A, save_stats writes A
    opts = score.ScoreOptions(weights=inception_weights, dims=64, device="cpu", num_workers=0, progress=False)
    lib = real_compute_fid(b, a, opts, save_stats=tmp_path / "b_stats.npz")
    assert lib["gen"]["source"] == str(b) and lib["ref"]["source"] == str(a)
    with np.load(tmp_path / "b_stats.npz") as z:
        np.testing.assert_allclose(z["mu"], stats["b"][0], rtol=1e-5, atol=1e-6)
    assert lib["fid"] == pytest.approx(r["fid"], rel=1e-6)  # FID itself is symmetric


# ---------------------------------------------------------------- library errors name library parameters

def test_library_errors_name_parameters_and_the_cli_names_flags(tmp_path, capsys):
    from gan_probe.metrics.score import ScoreOptions, compute_scores, parse_metrics
    from gan_probe.metrics.sources import open_source
    from gan_probe.metrics.statsfile import save_statistics

    a = _npz(tmp_path / "a.npz", [0, 0, 0])
    cases = [
        (lambda: compute_scores(a, None, ["fid", "kid"]), "ref", "ref is required by fid, kid"),
        (lambda: parse_metrics("fid,xyz"), "metrics", "metrics has unknown metric(s) xyz"),
        (lambda: compute_scores(a, a, ["fid"], ScoreOptions(dims=100)), "dims", "dims must be one of"),
        (lambda: compute_scores(a, a, ["fid"], save_stats=tmp_path / "out.txt"), "save_stats",
         "save_stats must be a .npz path"),
        (lambda: open_source(tmp_path / "x.pt", n=1), "n", "n must be at least 2"),
        (lambda: save_statistics(tmp_path / "s.txt", np.zeros(2), np.eye(2)), "path", "path must end in .npz"),
    ]
    (tmp_path / "x.pt").write_bytes(b"")
    for call, param, start in cases:
        with pytest.raises(GanProbeError) as e:
            call()
        assert e.value.param == param and str(e.value).startswith(start), str(e.value)
        assert "--" not in str(e.value)
    code, _, err = run_cli(["fid", a, a, "--save-stats", tmp_path / "out.txt"], capsys)
    assert code == 1 and "--save-stats must be a .npz path" in err
    assert not (tmp_path / "out.txt").exists()
    code, _, err = run_cli(["score", a, "--ref", a, "--metrics", "fid", "--dims", 100], capsys)
    assert code == 1 and "--dims must be one of" in err


# ---------------------------------------------------------------- other registries

def test_register_feature_space_adds_a_space(monkeypatch):
    import torch

    from gan_probe import features

    assert list(features.FEATURE_SPACES)[:4] == ["pixels", "disc", "random-disc", "inception"]
    monkeypatch.setattr(features, "FEATURE_SPACES", dict(features.FEATURE_SPACES))
    monkeypatch.setattr(features, "FEATURE_SPACE_HELP", dict(features.FEATURE_SPACE_HELP))

    def mean_colour(checkpoint=None, device="cpu", **_):
        return features.FeatureSpace("mean-colour", 3, lambda x: x.mean((2, 3)).cpu(), None, 3, "mean colour")

    assert features.register_feature_space("mean-colour", mean_colour, help="mean RGB") is mean_colour
    space = features.get_feature_space("mean-colour")
    assert space(torch.ones(2, 1, 4, 4)).tolist() == [[1.0] * 3] * 2  # grayscale adapted to the 3 channels asked
    assert features.feature_space_names()[-1] == "mean-colour" and features.FEATURE_SPACE_HELP["mean-colour"]
    with pytest.raises(ValueError, match="already registered"):
        features.register_feature_space("pixels", mean_colour)
    with pytest.raises(GanProbeError, match="mean-colour"):
        features.get_feature_space("nope")


def test_dataset_help_lists_the_dataset_registry(monkeypatch, capsys):
    from gan_probe import data

    monkeypatch.setattr(data, "DATASETS", dict(data.DATASETS))
    data.register("toy", channels=1, image_size=8, splits=("train", "test"), default_split="train",
                  description="a test dataset")(lambda *a, **k: None)
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    text = _flat(out)
    for name in data.DATASETS:
        assert name in text, name
    assert "toy[:train|test]" in text
    code, out, _ = run_cli(["download", "--help"], capsys)
    downloadable = [n for n, i in data.DATASETS.items() if i.downloadable]
    assert code == 0 and " | ".join(downloadable) + "." in _flat(out) and "toy" in downloadable
