"""score in every feature space (issue 13): FD/KD/PR/DC in DINOv2 space, CMMD in CLIP space, every
registered metric in every space it applies to, the resize protocol stated and cached apart,
bootstrap intervals, FD-infinity, N against d, and memorization --features dinov2.

The encoders are tiny (2 blocks, 32-d) and their stand-in weights are written in the real file
formats where docs/encoders.md says to put them ($GAN_PROBE_DINOV2_WEIGHTS / $GAN_PROBE_CLIP_WEIGHTS);
only the architecture size is swapped in (``ENCODERS``), so the command path is the real one."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from cli_runner import run_cli
from PIL import Image
from scoring_helpers import N_IMAGES, _assert_user_error, _options, _write_images

from gan_probe import encoders
from gan_probe.encoders import clip as clip_mod
from gan_probe.encoders import dinov2 as dino_mod
from gan_probe.encoders.vit import ViTSpec
from gan_probe.metrics.fid import features_to_statistics, statistics_to_fid
from gan_probe.metrics.registry import METRICS, default_metrics
from gan_probe.metrics.score import compute_scores

DINO_TINY = ViTSpec(patch_size=14, embed_dim=32, depth=2, num_heads=4, mlp_dim=64, img_size=28,
                    norm_eps=1e-6, act="gelu", layer_scale=True)
CLIP_TINY = ViTSpec(patch_size=14, embed_dim=32, depth=2, num_heads=4, mlp_dim=48, img_size=42,
                    norm_eps=1e-5, act="quick_gelu", pre_norm=True, proj_dim=16)


@pytest.fixture(scope="module")
def standin_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoder-weights")
    return (dino_mod.write_standin_weights(root / "dinov2_vitl14_pretrain.pth", spec=DINO_TINY, grid=3),
            clip_mod.write_standin_weights(root / "clip.safetensors", spec=CLIP_TINY))


@pytest.fixture(autouse=True)
def tiny_encoders(standin_weights, monkeypatch):
    monkeypatch.setitem(encoders.ENCODERS, "dinov2", lambda **kw: dino_mod.dinov2_encoder(spec=DINO_TINY, **kw))
    monkeypatch.setitem(encoders.ENCODERS, "clip", lambda **kw: clip_mod.clip_encoder(spec=CLIP_TINY, **kw))
    monkeypatch.setenv("GAN_PROBE_DINOV2_WEIGHTS", str(standin_weights[0]))
    monkeypatch.setenv("GAN_PROBE_CLIP_WEIGHTS", str(standin_weights[1]))
    return standin_weights


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _direct_features(name, folder) -> np.ndarray:
    """The oracle: the encoder applied to the folder's decoded images directly (no cache, no sources)."""
    enc = encoders.get_encoder(name)
    ims = [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
           for p in sorted(folder.iterdir())]
    return enc(torch.stack(ims)).numpy().astype(np.float64)


def test_default_metrics_per_space():
    assert default_metrics() == default_metrics("inception") == ["fid", "is", "kid", "pr", "dc"]  # as before
    assert default_metrics("dinov2") == ["fd", "kd", "pr", "dc"]
    assert default_metrics("clip") == ["pr", "dc", "cmmd"]


@pytest.mark.parametrize("space", ["dinov2", "clip"])
def test_score_without_metrics_uses_the_spaces_defaults(folders, space, capsys):
    """`score --features dinov2` with no --metrics computes that space's defaults (once it stopped with
    "fid, is, kid not defined in the dinov2 feature space": the help's default was passed as the value)."""
    real, fake = folders
    code, out, err = run_cli(["score", fake, "--ref", real, "--features", space, "--device", "cpu",
                              "--num-workers", "0", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["metrics"] == default_metrics(space)


def test_score_dinov2_fd_kd_pr_dc_with_ci(folders, tiny_encoders, capsys):
    real, fake = folders
    code, out, err = run_cli(["score", fake, "--ref", real, "--features", "dinov2", "--metrics", "fd,kd,pr,dc",
                              "--ci", "0.95", "--ci-rounds", "8", "--device", "cpu", "--num-workers", "0",
                              "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    p = r["protocol"]
    assert p["space"] == "dinov2" and p["dims"] == 32
    assert p["weights_sha256"] == _sha(tiny_encoders[0]) and "dgm-eval" in p["preprocessing"]
    assert not any(k in r for k in ("fid", "kid", "is"))  # never named for a space it was not computed in
    gen, ref = _direct_features("dinov2", fake), _direct_features("dinov2", real)
    assert r["fd"] == pytest.approx(statistics_to_fid(*features_to_statistics(gen), *features_to_statistics(ref)),
                                    rel=1e-4, abs=1e-6)
    for key in ("fd", "kd", "precision", "recall", "density", "coverage"):
        iv = r["ci"][key]
        assert iv["low"] <= iv["high"] and iv["ci"] == 0.95 and iv["rounds"] == 8
    assert r["ci"]["fd"]["value"] == pytest.approx(r["fd"], rel=1e-5)
    # 6 images in 32 dimensions: the table says N is too small for a covariance
    assert [c["too_small"] for c in r["sample_size"]] == [True, True]
    assert any("N < d" in w for w in r["warnings"])


def test_score_clip_cmmd_table_names_space_hash_and_preprocessing(folders, tiny_encoders, capsys):
    real, fake = folders
    args = ["score", fake, "--ref", real, "--features", "clip", "--metrics", "cmmd", "--device", "cpu",
            "--num-workers", "0"]
    code, out, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    from gan_probe.metrics.cmmd import features_to_cmmd

    assert r["cmmd"] == pytest.approx(features_to_cmmd(_direct_features("clip", real), _direct_features("clip", fake)),
                                      rel=1e-4, abs=1e-7)
    assert r["protocol"]["space"] == "clip" and r["protocol"]["weights_sha256"] == _sha(tiny_encoders[1])
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    flat = " ".join(out.split())
    sha = _sha(tiny_encoders[1])
    assert "CMMD" in flat and f"clip, sha256 {sha[:12]}" in flat and sha in flat
    assert "preprocessing: CMMD reference" in flat and "N = 6 for 16-d features" in flat


@pytest.fixture(scope="module")
def folders12(tmp_path_factory):
    """12 images a side: the Inception Score's 10 splits need at least 10."""
    root = tmp_path_factory.mktemp("twelve")
    return _write_images(root / "real", 12, 0), _write_images(root / "fake", 12, 1)


@pytest.mark.parametrize("space", ["inception", "dinov2", "clip"])
def test_every_registered_metric_in_every_space_it_applies_to(folders12, inception_weights, space):
    real, fake = folders12
    names = [m.name for m in METRICS.values() if m.applies_to(space)]
    r = compute_scores(fake, real, names, _options(inception_weights, features=space))
    for name in names:
        for row in METRICS[name].rows:
            assert np.isfinite(r[row.key]), (space, name, row.key)
    assert r["protocol"]["space"] == space and r["protocol"]["weights_sha256"]


@pytest.mark.parametrize("space,metric,hint", [("dinov2", "fid", "fd"), ("dinov2", "kid", "kd"),
                                               ("inception", "fd", "fid"), ("dinov2", "is", None),
                                               ("dinov2", "cmmd", None)])
def test_metric_outside_its_space_is_one_line(folders, space, metric, hint, capsys):
    real, fake = folders
    code, out, err = run_cli(["score", fake, "--ref", real, "--features", space, "--metrics", metric], capsys)
    _assert_user_error(code, err, "--metrics", metric, space, *([f"ask for {hint}"] if hint else []))


def test_unknown_space_and_protocol_outside_inception_are_one_line(folders, capsys):
    real, fake = folders
    code, out, err = run_cli(["score", fake, "--ref", real, "--features", "vgg"], capsys)
    _assert_user_error(code, err, "--features", "dinov2", "clip")
    code, out, err = run_cli(["score", fake, "--ref", real, "--features", "dinov2", "--protocol", "clean"], capsys)
    _assert_user_error(code, err, "--protocol", "Inception")
    code, out, err = run_cli(["fid", fake, real, "--protocol", "tf"], capsys)
    _assert_user_error(code, err, "--protocol", "clean")


def test_protocol_is_stated_cached_apart_and_saved(folders, inception_weights, tmp_path):
    real, fake = folders
    base = compute_scores(fake, real, ["fid"], _options(inception_weights))
    clean = compute_scores(fake, real, ["fid"], _options(inception_weights, protocol="clean"),
                           save_stats=tmp_path / "clean.npz")
    assert base["protocol"]["resize_protocol"] == "pytorch-fid" and clean["protocol"]["resize_protocol"] == "clean"
    assert not clean["gen"]["cached"]  # the pytorch-fid run's statistics are not reused for clean
    assert clean["fid"] != pytest.approx(base["fid"], rel=1e-6)
    with np.load(tmp_path / "clean.npz") as z:
        assert str(z["protocol"]) == "clean" and str(z["space"]) == "inception"
    again = compute_scores(fake, real, ["fid"], _options(inception_weights, protocol="clean"))
    assert again["gen"]["cached"] and again["fid"] == pytest.approx(clean["fid"], rel=1e-12)


def test_fid_warns_when_statistics_carry_different_protocols(folders, inception_weights, tmp_path, capsys):
    real, fake = folders
    compute_scores(fake, real, ["fid"], _options(inception_weights, protocol="clean"), save_stats=tmp_path / "a.npz")
    compute_scores(real, fake, ["fid"], _options(inception_weights), save_stats=tmp_path / "b.npz")
    code, out, err = run_cli(["fid", tmp_path / "a.npz", tmp_path / "b.npz"], capsys)
    assert code == 0, err
    line = " ".join(err.split())
    assert "protocol mismatch" in line and "a.npz" in line and "b.npz" in line and "clean" in line
    code, out, err = run_cli(["fid", tmp_path / "b.npz", tmp_path / "b.npz", "--json"], capsys)
    assert code == 0 and not json.loads(out)["warnings"]


def test_fd_inf_and_ci_in_inception_space(folders, inception_weights):
    real, fake = folders
    r = compute_scores(fake, real, ["fid", "kid"], _options(inception_weights, fd_inf=True, ci=0.9, ci_rounds=5))
    fit = r["fid_inf_fit"]
    assert r["fid_inf"] == fit["value"] and len(fit["sizes"]) >= 2 and fit["sizes"][-1] == N_IMAGES
    assert fit["fds"][-1] == pytest.approx(r["fid"], rel=1e-4)  # FD at the full N is the FID
    assert set(r["ci"]) == {"fid", "kid"} and r["ci"]["fid"]["ci"] == 0.9


def test_ci_and_fd_inf_need_gen_images(folders, inception_weights, tmp_path, capsys):
    real, fake = folders
    compute_scores(fake, real, ["fid"], _options(inception_weights), save_stats=tmp_path / "g.npz")
    code, out, err = run_cli(["score", tmp_path / "g.npz", "--ref", real, "--metrics", "fid", "--ci", "0.95",
                              "--inception-weights", inception_weights], capsys)
    _assert_user_error(code, err, "--ci", "g.npz")


def test_memorization_searches_neighbours_in_dinov2_space(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name, n in (("gen", 6), ("train", 10), ("test", 6)):
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    code, out, err = run_cli(["memorization", tmp_path / "gen", "--train", tmp_path / "train", "--test",
                              tmp_path / "test", "--features", "dinov2", "--k", "2", "--n-rel", "2",
                              "--ct-cells", "1", "--device", "cpu", "--out", tmp_path / "mem", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["features"] == "dinov2" and _sha(encoders.dinov2.find_dinov2_weights().path) in s["feature_description"]
