"""`gan-probe stats`: tagged reference statistics that pytorch-fid reads; fid/score read pytorch-fid /
TTUR, clean-fid and ADM statistics; a protocol mismatch between two tagged sides is a warning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_runner import run_cli
from scoring_helpers import _assert_user_error


def test_stats_round_trip_with_pytorch_fid(folders, inception_weights, tmp_path, capsys):
    from pytorch_fid.fid_score import calculate_frechet_distance, compute_statistics_of_path

    w = ["--inception-weights", inception_weights, "--dims", 64, "--num-workers", 0, "--device", "cpu"]
    ref = tmp_path / "ref.npz"
    code, out, err = run_cli(["stats", folders[0], "--out", ref, "--json"] + w, capsys)
    assert code == 0, err
    r = json.loads(out)
    tags = r["tags"]
    assert tags["n"] == "6" and tags["dims"] == "64" and len(tags["weights_sha256"]) == 64
    assert "Inception" in tags["encoder"] and tags["protocol"] == "pytorch-fid"
    assert "bilinear" in tags["preprocessing"] and len(tags["source_fingerprint"]) == 64
    with np.load(ref) as z:  # plain np.load, no pickle: the tags are string arrays
        assert str(z["weights_sha256"]) == tags["weights_sha256"]
        mu, sigma = z["mu"], z["sigma"]
    m, s = compute_statistics_of_path(str(ref), None, 1, 64, "cpu")  # pytorch-fid's own loader
    assert np.array_equal(m, mu) and np.array_equal(s, sigma) and m.shape == (64,)

    code, out, err = run_cli(["fid", folders[0], folders[1], "--json", "--save-stats", tmp_path / "a.npz"] + w, capsys)
    assert code == 0, err
    direct = json.loads(out)
    code, out, err = run_cli(["fid", folders[1], ref, "--json", "--save-stats", tmp_path / "b.npz"] + w, capsys)
    assert code == 0, err
    from_file = json.loads(out)
    assert from_file["fid"] == pytest.approx(direct["fid"], rel=1e-6)  # sides swapped: rank-5 covariances
    assert not any("mismatch" in x for x in from_file["warnings"])
    with np.load(tmp_path / "a.npz") as a:  # --save-stats writes the same tags (GEN side)
        assert str(a["n"]) == "6" and str(a["weights_sha256"]) == tags["weights_sha256"]
    m2, s2 = compute_statistics_of_path(str(tmp_path / "b.npz"), None, 1, 64, "cpu")
    # pytorch-fid's distance between our two files; regularised sqrtm on rank-5 covariances: loose
    assert calculate_frechet_distance(m, s, m2, s2) == pytest.approx(direct["fid"], rel=1e-3)


def test_protocol_mismatch_warns_naming_both_sides(folders, inception_weights, tmp_path, capsys):
    w = ["--inception-weights", inception_weights, "--dims", 64, "--num-workers", 0, "--device", "cpu"]
    ref = tmp_path / "ref.npz"
    assert run_cli(["stats", folders[0], "--out", ref] + w, capsys)[0] == 0
    with np.load(ref) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["protocol"] = np.array("uint8 RGB -> clean-fid PIL bicubic resize")
    other = tmp_path / "other_protocol.npz"
    np.savez(other, **arrays)
    code, out, err = run_cli(["fid", folders[1], other, "--json"] + w, capsys)
    assert code == 0, err
    (warning,) = [x for x in json.loads(out)["warnings"] if "mismatch" in x]
    assert "other_protocol.npz" in warning and str(folders[1]) in warning and "clean-fid" in warning
    code, out, err = run_cli(["fid", ref, other, "--json"], capsys)  # torch-free path: both tagged files
    assert code == 0 and any("mismatch" in x for x in json.loads(out)["warnings"])


def test_fid_reads_clean_fid_ttur_and_adm_statistics(tmp_path, capsys):
    from gan_probe.metrics.fid import statistics_to_fid

    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 8))
    b = rng.normal(size=(40, 8)) + 0.5
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    expected = statistics_to_fid(mu1, s1, mu2, s2)
    clean = tmp_path / "cifar10_clean_train_32.npz"  # clean-fid: np.savez_compressed(outf, mu=mu, sigma=sigma)
    np.savez_compressed(clean, mu=mu1, sigma=s1)
    adm = tmp_path / "VIRTUAL_ref_batch.npz"  # ADM: images, pool3 mu / sigma, spatial mu_s / sigma_s
    np.savez(adm, arr_0=rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8), mu=mu2, sigma=s2,
             mu_s=np.zeros(2), sigma_s=np.eye(2))
    ttur = tmp_path / "fid_stats_ttur.npz"
    np.savez(ttur, mu=mu2.astype(np.float32), sigma=s2.astype(np.float32))
    code, out, err = run_cli(["fid", clean, adm, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["fid"] == pytest.approx(expected, rel=1e-9)
    code, out, err = run_cli(["fid", clean, ttur, "--json"], capsys)
    assert code == 0 and json.loads(out)["fid"] == pytest.approx(expected, rel=1e-5)


def test_stats_user_errors(folders, inception_weights, tmp_path, capsys):
    np.savez(tmp_path / "s.npz", mu=np.zeros(3), sigma=np.eye(3))
    w = ["--inception-weights", inception_weights, "--dims", 64]
    for args, word in ((["stats", tmp_path / "s.npz", "--out", tmp_path / "o.npz"] + w, "already holds"),
                       (["stats", folders[0], "--out", tmp_path / "o.txt"] + w, "--out"),
                       (["stats", tmp_path / "none", "--out", tmp_path / "o.npz"] + w, "none")):
        code, _, err = run_cli(args, capsys)
        _assert_user_error(code, err, word)
    assert not (tmp_path / "o.npz").exists()


def test_stats_takes_the_clean_protocol_and_tags_it(folders, inception_weights, tmp_path, capsys):
    w = ["--inception-weights", inception_weights, "--dims", 64, "--num-workers", 0, "--device", "cpu"]
    code, out, err = run_cli(["stats", folders[0], "--out", tmp_path / "clean.npz", "--protocol", "clean",
                              "--json"] + w, capsys)
    assert code == 0, err
    assert json.loads(out)["tags"]["protocol"] == "clean"
    with np.load(tmp_path / "clean.npz") as z:
        assert str(z["protocol"]) == "clean"
