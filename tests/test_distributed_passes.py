"""Feature passes under ``torchrun``: 2 gloo processes on the CPU give the one-process result.

Each test runs the command once in this process (the one-process reference) and once as
``python -m torch.distributed.run --nproc_per_node 2 -m gan_probe ...`` (each torchrun costs
several seconds of start-up, so there are few of them). Sizes are chosen so that the shares are
uneven (an odd number of batches) and one source has a last, short batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cli_runner import run_cli

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")


def _torchrun(*args, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), "-m", "gan_probe", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def _json(stdout: str) -> dict:
    return json.loads(stdout)


def _images(n: int, seed: int, size: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("block", [1, 2, 4])
def test_shards_are_whole_blocks_that_make_up_range_n(block):
    from gan_probe.distributed import Dist, shard

    for n in (0, 1, 5, 9, 10, 11):
        for world in (1, 2, 3, 4):
            parts = [shard(n, Dist(rank=r, world=world), block) for r in range(world)]
            assert [i for p in parts for i in p] == list(range(n))
            assert all(p.start % block == 0 for p in parts if p)


def test_merged_statistics_equal_one_accumulator():
    from gan_probe.metrics.fid import StatisticsAccumulator, features_to_statistics

    x = np.random.default_rng(0).standard_normal((23, 5))
    parts = [StatisticsAccumulator() for _ in range(3)]
    for part, rows in zip(parts, (x[:8], x[8:8], x[8:])):  # one rank with no rows
        part.update(rows)
    total = StatisticsAccumulator()
    for part in parts:
        total.merge(part)
    mu, sigma = total.statistics()
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-12)
    np.testing.assert_allclose(sigma, features_to_statistics(x)[1], rtol=1e-12)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """A cache of this test's own (the torchrun processes inherit the variable)."""
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def one_thread():
    """The one-process reference runs with one thread, as each torchrun process does (float32
    convolutions, PCA and KMeans under another thread count may differ in the last bits)."""
    from threadpoolctl import threadpool_limits  # (scikit-learn's dependency) BLAS too: PCA, KMeans

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def test_score_two_processes_equal_one(tmp_path, tiny_checkpoint, inception_weights, capsys, one_thread):
    """score of seeded samples (a checkpoint, 9 samples) against an image folder (7 files): every
    metric value equal; rank 0 alone writes the summary and the cache entries; one JSON printed."""
    real = tmp_path / "real"
    real.mkdir()
    for i, im in enumerate(_images(7, 0)):
        Image.fromarray(im).save(real / f"{i:02d}.png")
    common = ["score", tiny_checkpoint, "--ref", real, "--metrics", "fid,kid,pr", "--num-samples", 9,
              "--inception-weights", inception_weights, "--dims", 64, "--batch-size", 2, "--num-workers", 0,
              "--device", "cpu", "--json"]
    code, out, err = run_cli([*common, "--no-cache", "--out", tmp_path / "one"], capsys)
    assert code == 0, err
    one = _json(out)

    r = _torchrun(*common, "--out", tmp_path / "two")
    assert r.returncode == 0, r.stderr[-3000:]
    two = _json(r.stdout)  # one JSON object: rank 1 printed nothing
    assert two["fid"] == pytest.approx(one["fid"], rel=1e-6)
    for key in ("kid", "precision", "recall"):
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-12), key
    assert (two["gen"]["n"], two["ref"]["n"]) == (one["gen"]["n"], one["ref"]["n"]) == (9, 7)
    assert (tmp_path / "two" / "summary.json").is_file()
    cache = sorted(p.name for p in (tmp_path / "cache").rglob("*.npz"))
    assert len(cache) == 4  # statistics and features of each side, written once (rank 0), no temp file left
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix != ".npz"]

    r = _torchrun(*common, "--out", tmp_path / "again")  # the cache rank 0 wrote: a hit for every rank, same numbers
    assert r.returncode == 0, r.stderr[-3000:]
    again = _json(r.stdout)
    assert again["gen"]["cached"] and again["ref"]["cached"]
    assert again["fid"] == two["fid"]


def test_fid_two_processes_archive_and_array(tmp_path, inception_weights, capsys, one_thread):
    """fid of a .zip (members sharded) against a .npy array (rows sharded): the same FID and the
    same saved statistics (within float64 rounding); only rank 0 writes --save-stats and --out."""
    ims = _images(5, 1)
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        for i, im in enumerate(ims):
            p = tmp_path / f"m{i}.png"
            Image.fromarray(im).save(p)
            zf.write(p, f"imgs/{i}.png")
    np.save(tmp_path / "b.npy", np.stack(_images(6, 2)))
    common = ["fid", tmp_path / "a.zip", tmp_path / "b.npy", "--inception-weights", inception_weights, "--dims", 64,
              "--batch-size", 2, "--num-workers", 0, "--device", "cpu", "--no-cache", "--json"]
    code, out, err = run_cli([*common, "--save-stats", tmp_path / "one.npz"], capsys)
    assert code == 0, err
    one = _json(out)
    r = _torchrun(*common, "--save-stats", tmp_path / "two.npz", "--out", tmp_path / "two")
    assert r.returncode == 0, r.stderr[-3000:]
    two = _json(r.stdout)
    assert two["fid"] == pytest.approx(one["fid"], rel=1e-6)
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    np.testing.assert_allclose(b["mu"], a["mu"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b["sigma"], a["sigma"], rtol=1e-9, atol=1e-12)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["summary.json"]


def test_fid_error_in_one_share_stops_every_rank_with_one_line(tmp_path, inception_weights):
    """A corrupt image in rank 1's share: every process stops (no hang), one error line, no traceback."""
    folder = tmp_path / "f"
    folder.mkdir()
    for i, im in enumerate(_images(4, 3)):
        Image.fromarray(im).save(folder / f"{i}.png")
    (folder / "9.png").write_bytes(b"not a png")  # sorted last: rank 1's share
    r = _torchrun("fid", folder, folder, "--inception-weights", inception_weights, "--dims", 64, "--batch-size", 2,
                  "--num-workers", 0, "--device", "cpu", "--no-cache")
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "9.png" in lines[0] and "--skip-bad" in lines[0], r.stderr[-3000:]
    assert "GanProbeError" not in r.stderr and "gan_probe/" not in r.stderr  # (torchrun's own report follows)


def test_memorization_two_processes_same_neighbours(tmp_path, tiny_checkpoint, capsys, one_thread):
    """Pixel-space memorization of 21 seeded samples against digits: the same neighbours, distances
    and verdict; rank 0 alone writes the figures and summary."""
    common = ["memorization", tiny_checkpoint, "--train", "digits:train", "--test", "digits:test",
              "--num-samples", 21, "--batch-size", 8, "--device", "cpu", "--json"]
    code, out, err = run_cli([*common, "--out", tmp_path / "one"], capsys)
    assert code == 0, err
    one = _json(out)
    r = _torchrun(*common, "--out", tmp_path / "two")
    assert r.returncode == 0, r.stderr[-3000:]
    two = _json(r.stdout)
    assert (tmp_path / "one" / "per_sample.csv").read_text() == (tmp_path / "two" / "per_sample.csv").read_text()
    drop = {"out", "files", "argv", "created", "summary_file"}
    strip = lambda s: {k: v for k, v in s.items() if k not in drop and "time" not in k}  # noqa: E731
    assert strip(two) == strip(one)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_classify_two_processes_same_accuracy(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    """The L2-SVM on D's features of digits: the features rank 0 gathered and cached are those of
    one process, byte for byte, and every draw's accuracy is the same."""
    common = ["classify", tiny_checkpoint, "--features", "disc", "--dataset", "digits", "--labels-per-class", 10,
              "--repeats", 2, "--val-draws", 1, "--c", 0.01, "--no-baselines", "--batch-size", 96, "--device", "cpu",
              "--json"]
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache-one"))
    code, out, err = run_cli([*common, "--out", tmp_path / "one"], capsys)
    assert code == 0, err
    one = _json(out)
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache-two"))
    r = _torchrun(*common, "--out", tmp_path / "two")
    assert r.returncode == 0, r.stderr[-3000:]
    two = _json(r.stdout)
    assert not two["from_cache"] and two["cache_keys"] == one["cache_keys"]
    assert two["accuracy"]["values"] == one["accuracy"]["values"]
    assert two["draws"] == one["draws"]
    files = sorted(p.relative_to(tmp_path / "cache-one") for p in (tmp_path / "cache-one").rglob("*.npy"))
    assert len(files) == 4  # train and test features and labels
    for f in files:
        assert (tmp_path / "cache-two" / f).read_bytes() == (tmp_path / "cache-one" / f).read_bytes(), f
