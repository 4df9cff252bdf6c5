"""Probe any GAN, every command: --trust-pickle / --psi / --class wherever a model goes, and
score --per-class (intra-FID) on a conditional generator that is not gan-probe's."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import gan_probe
from gan_probe.errors import GanProbeError
from tests.cli_runner import run_cli
from tests.test_any_gan import MARKER_PICKLE, user_models  # noqa: F401  (the fixture)


def _class_folder(root, classes: int, per_class: int, size: int = 16, seed: int = 0):
    """One sub-folder of random RGB PNGs per class; class k's images brighter with k."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        (root / str(k)).mkdir(parents=True)
        for i in range(per_class):
            im = rng.integers(0, 256 // (classes - k), (size, size, 3), dtype=np.uint8)
            Image.fromarray(im).save(root / str(k) / f"{i}.png")
    return root


def test_per_class_fid_equals_each_class_scored_alone(user_models, inception_weights, capsys):  # noqa: F811
    from gan_probe.metrics.fid import statistics_to_fid
    from gan_probe.metrics.score import ScoreOptions, compute_scores
    from gan_probe.models.sources import ModelSpec

    tmp, _ = user_models
    ref = _class_folder(tmp / "ref", 3, 5)
    common = ["--n", 6, "--dims", 64, "--inception-weights", inception_weights, "--device", "cpu",
              "--num-workers", 0, "--batch-size", 8]
    code, out, err = run_cli(["score", tmp / "C.json", "--ref", ref, "--per-class", "--metrics", "fid,kid",
                              "--json", *common], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["classes"] == ["0", "1", "2"] and [c["n_ref"] for c in r["per_class"]] == [5, 5, 5]
    fids = [c["fid"] for c in r["per_class"]]
    assert len(set(fids)) == 3
    assert r["per_class_mean"]["fid"] == pytest.approx(np.mean(fids))
    assert "kid_std" not in r["per_class_mean"] and r["per_class_mean"]["kid"] == pytest.approx(
        np.mean([c["kid"] for c in r["per_class"]]))
    opts = ScoreOptions(n=6, dims=64, weights=inception_weights, device="cpu", num_workers=0, batch_size=8,
                        progress=False)
    for k in range(3):  # class k of GEN alone against REF's sub-folder k alone: the same number
        alone = compute_scores(ModelSpec(tmp / "C.json", class_index=k), ref / str(k), ["fid"], opts)
        assert alone["gen"]["n"] == 6 and alone["ref"]["n"] == 5
        assert fids[k] == pytest.approx(alone["fid"], rel=1e-6)
    # ... and a direct statistics_to_fid of that class's features
    from gan_probe.features.inception import InceptionExtractor
    from gan_probe.features.resize import get_protocol
    from gan_probe.metrics.fid import features_to_statistics
    from gan_probe.metrics.sources import open_source

    ext = InceptionExtractor(inception_weights, torch.device("cpu"), 64)
    to_input = get_protocol("pytorch-fid").to_input
    feats = [ext(to_input(torch.cat(list(open_source(s, n=6).batches(8))))).features.numpy().astype(np.float64)
             for s in (ModelSpec(tmp / "C.json", class_index=1), str(ref / "1"))]
    want = statistics_to_fid(*features_to_statistics(feats[1]), *features_to_statistics(feats[0]))
    assert fids[1] == pytest.approx(want, rel=1e-4)
    # the table and the run summary (a loose model writes beside itself, as every analysis of it)
    code, out, err = run_cli(["score", tmp / "C.json", "--ref", ref, "--per-class", "--metrics", "fid", *common],
                             capsys)
    assert code == 0, err
    assert "per class" in out and "mean" in out and f"{np.mean(fids):.4f}" in out
    s = json.loads((tmp / "analysis" / "score" / "summary.json").read_text())
    assert s["per_class_mean"]["fid"] == pytest.approx(np.mean(fids)) and "--per-class" in s["argv"]


def test_per_class_errors_are_one_line(user_models, tmp_path, capsys):  # noqa: F811
    tmp, _ = user_models
    ref = _class_folder(tmp / "ref", 3, 2)
    flat = tmp / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / "a.png")
    four = _class_folder(tmp / "four", 4, 2)
    cases = [((tmp / "G.ts", ref), "unconditional"),
             ((tmp / "C.json", flat), "no class labels"),
             ((tmp / "C.json", four), "GEN has 3 classes but ref"),
             ((tmp / "C.json", "digits:test"), "GEN has 3 classes but ref digits:test has 10 (0, 1, 2, 3"),
             ((ref, ref), "is not a model")]
    for (gen, r), message in cases:
        code, _, err = run_cli(["score", gen, "--ref", r, "--per-class", "--metrics", "fid"], capsys)
        assert code == 1 and message in err and "Traceback" not in err, err
    code, _, err = run_cli(["score", tmp / "C.json", "--per-class", "--metrics", "fid"], capsys)
    assert code == 1 and "--ref is required" in err


def test_pickles_are_refused_in_every_command_and_never_unpickled(user_models, capsys):  # noqa: F811
    tmp, _ = user_models
    marker = tmp / "UNPICKLED"
    ns: dict = {}
    exec(MARKER_PICKLE.format(marker=str(marker)), ns)
    (tmp / "net.pkl").write_bytes(pickle.dumps({"G_ema": ns["Boom"](), "D": ns["Boom"]()}))
    (tmp / "P.json").write_text(json.dumps({"pickle": "net.pkl"}))
    ref = _class_folder(tmp / "ref", 2, 2)
    for model in ("net.pkl", "P.json"):
        m = tmp / model
        for args in (["score", m, "--ref", ref, "--metrics", "fid"], ["fid", ref, m],
                     ["memorization", m, "--train", "digits:train"],
                     ["classify", m, "--features", "disc", "--dataset", "digits"],
                     ["filters", m], ["walk", m], ["arithmetic", m, "--sheet"]):
            code, _, err = run_cli(args, capsys)
            assert code == 1 and "--trust-pickle" in err and "runs code" in err, (args, err)
    assert not marker.exists()
    code, _, err = run_cli(["classify", tmp / "net.pkl", "--trust-pickle", "--features", "disc", "--dataset",
                            "digits"], capsys)
    assert code == 1 and marker.exists()  # trusted: it ran (and is not a network)


def test_class_and_psi_reach_score_and_memorization(user_models, capsys):  # noqa: F811
    from gan_probe.metrics.sources import open_source
    from gan_probe.models.sources import ModelSpec
    from gan_probe.sampling import sample_to_folder

    tmp, _ = user_models
    one = open_source(ModelSpec(tmp / "C.json", class_index=1), n=4, seed=2)
    two = open_source(ModelSpec(tmp / "C.json", class_index=2), n=4, seed=2)
    assert one.fingerprint != two.fingerprint  # the stats cache tells classes apart
    sample_to_folder(ModelSpec(tmp / "C.json", class_index=1), tmp / "K1", 4, seed=2)
    png = np.asarray(Image.open(tmp / "K1" / "000003.png"))
    assert np.array_equal(torch.cat(list(one.batches(2)))[3].permute(1, 2, 0).numpy(), png)
    code, out, err = run_cli(["memorization", tmp / "C.json", "--class", 1, "--train", "digits:train", "--n", 8,
                              "--device", "cpu", "--json"], capsys)
    assert code == 0, err
    argv = json.loads((tmp / "analysis" / "memorization" / "summary.json").read_text())["argv"]
    assert argv[:5] == ["gan-probe", "memorization", str(tmp / "C.json"), "--class", "1"]
    code, _, err = run_cli(["memorization", "digits:test", "--class", 1, "--train", "digits:train", "--out",
                            tmp / "never"], capsys)
    assert code == 1 and "apply to a generator" in err
    code, _, err = run_cli(["fid", tmp / "K1", tmp / "K1", "--psi", 0.5], capsys)
    assert code == 1 and "neither A nor B is a model" in err


def test_psi_and_class_where_they_do_not_apply(user_models, tiny_checkpoint, capsys):  # noqa: F811
    tmp, _ = user_models
    code, _, err = run_cli(["sample", tmp / "G.ts", "--psi", 0.5, "--n", 2, "--out", tmp / "s"], capsys)
    assert code == 1 and "psi (truncation) applies to StyleGAN networks only" in err
    code, _, err = run_cli(["sample", tiny_checkpoint, "--class", 1, "--n", 2, "--out", tmp / "s2"], capsys)
    assert code == 1 and "unconditional" in err
    with pytest.raises(GanProbeError, match="unconditional"):
        from gan_probe.models.sources import ModelSpec

        gan_probe.load_generator(ModelSpec(tiny_checkpoint, class_index=0))


def test_report_over_a_loose_model_passes_the_model_options(user_models):  # noqa: F811
    from gan_probe.report.loose import loose_model
    from gan_probe.report.sections import ANALYSES, score_headline

    tmp, _ = user_models
    lm = loose_model(tmp / "C.json", disc=tmp / "D.json", dataset="digits", class_index=1, trust_pickle=True)
    by = {a.name: a for a in ANALYSES}
    assert lm.argv(by["walk"]) == ["walk", str(tmp / "C.json"), "--gif", "--class", "1", "--trust-pickle"]
    # a D takes no --class; filters searches the model's data
    assert lm.argv(by["filters"]) == ["filters", str(tmp / "D.json"), "--dataset", "digits", "--trust-pickle"]
    assert lm.argv(by["score"])[:4] == ["score", str(tmp / "C.json"), "--ref", "digits:train"]
    assert lm.folder == tmp and not lm.missing(by["classify"])
    alone = loose_model(tmp / "D.json")
    assert "needs the generator" in alone.missing(by["walk"]) and alone.argv(by["walk"])[1] == "GENERATOR"
    h = score_headline({"per_class": [{"fid": 2.0}, {"fid": 4.0}], "per_class_mean": {"fid": 3.0},
                        "gen": {"n_per_class": 6}, "ref": {"n": 10}, "protocol": {}})
    assert h.line.startswith("FID, mean of 2 classes 3.0000") and "6 per class" in h.line


SG_D = '''
import torch
from torch import nn


class FakeStyleGAND(nn.Module):
    """StyleGAN2-ADA's D interface: D(img, c), img_resolution, img_channels, c_dim."""
    def __init__(self):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = 2, 8, 3
        self.b8 = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.LeakyReLU(0.2))
        self.out = nn.Linear(4 * 64, 1)

    def forward(self, img, c):
        assert c.shape == (len(img), self.c_dim)
        return self.out(self.b8(img).flatten(1))
'''


def test_a_stylegan_discriminator_is_called_with_c(user_models):  # noqa: F811
    import importlib

    from gan_probe.features import get_feature_space
    from gan_probe.models.sources import ModelSpec

    tmp, _ = user_models
    (tmp / "usersg.py").write_text(SG_D)
    usersg = importlib.import_module("usersg")
    torch.manual_seed(0)
    net = usersg.FakeStyleGAND()
    (tmp / "sg.pkl").write_bytes(pickle.dumps({"D": net}))
    d, info = gan_probe.load_discriminator(ModelSpec(tmp / "sg.pkl", trust_pickle=True))
    assert info.layers == ["b8.1"] and d(torch.zeros(2, 3, 8, 8)).shape == (2, 1)
    space = get_feature_space("disc", checkpoint=ModelSpec(tmp / "sg.pkl", trust_pickle=True))
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    want = torch.nn.functional.adaptive_max_pool2d(net.b8(x), 4).flatten(1)
    assert space.dim == 16 * 4 and torch.allclose(space(x), want, atol=1e-6)


def test_dataset_reference_labels_follow_the_order_scoring_reads():
    from gan_probe.data import load_dataset
    from gan_probe.metrics.per_class import reference_labels
    from gan_probe.metrics.sources import open_source

    src = open_source("digits:test")
    labels, names = reference_labels("digits:test", src, None)
    ds = load_dataset("digits:test")
    assert len(labels) == src.n == len(ds) and names == [str(k) for k in range(10)]
    assert [int(ds[i][1]) for i in (0, 1, 2, len(ds) - 1)] == [int(labels[i]) for i in (0, 1, 2, len(ds) - 1)]
    assert np.bincount(labels).min() >= 30
