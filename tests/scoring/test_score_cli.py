"""The scoring commands end to end: ``score`` with every metric, ``fid``'s table, cache and
--skip-bad, and one-line user errors.

The Inception weights are a seeded stand-in (conftest's ``inception_weights``), handed to
both gan-probe and pytorch-fid, so their numbers can be compared offline. Image sets are
tiny: every Inception forward costs ~0.1 s on our 2 cores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_runner import run_cli
from scoring_helpers import N_IMAGES, _assert_user_error, _write_images


@pytest.mark.slow
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


@pytest.mark.slow
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

