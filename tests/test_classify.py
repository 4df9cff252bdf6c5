"""classify: features, the L2-SVM, the protocols, the loaders, the cache, the CLI."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_probe.analysis import classify as C
from gan_probe.analysis import classify_features as cf
from gan_probe.features import disc_features
from gan_probe.models import DCGANConfig, Discriminator
from gan_probe.svm import fit_linear_svm, primal_objective, row_chunks
from cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------- features

@pytest.mark.parametrize("name, dim", [("svhn_32", 7168), ("imagenet1k_32", 28672)])
def test_reference_discriminators_give_the_papers_feature_dims(name, dim):
    spec = json.loads((ROOT / "reference_models" / "configs" / f"{name}.json").read_text())
    config = DCGANConfig.from_dict(spec["model"])
    assert config.d_feature_dim == dim == 16 * sum(config.d_channels)
    d = Discriminator(config).eval()
    with torch.no_grad():
        f = disc_features(d, torch.zeros(1, 3, 32, 32).uniform_(-1, 1))
    assert f.shape == (1, dim)


def test_pooling_matches_a_hand_computation():
    config = DCGANConfig(image_size=16, channels=1, nz=4, kernel_size=3, g_channels=(4, 4),
                         d_channels=(2, 3, 1), d_strides=(1, 2, 2))
    torch.manual_seed(0)
    d = Discriminator(config).eval()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        maps = [m.numpy() for m in d.features(x)]  # 16x16, 8x8, 4x4
        got = disc_features(d, x).numpy()
    assert got.shape == (2, 16 * (2 + 3 + 1))
    expected = []
    for m in maps:
        n, c, h, _ = m.shape
        s = h // 4  # window = stride = h / 4 (4, 2 and 1 here, as the authors' SVHN model)
        pooled = np.empty((n, c, 4, 4), dtype=m.dtype)
        for i in range(4):
            for j in range(4):
                pooled[:, :, i, j] = m[:, :, i * s:(i + 1) * s, j * s:(j + 1) * s].max(axis=(2, 3))
        expected.append(pooled.reshape(n, -1))
    np.testing.assert_allclose(got, np.concatenate(expected, 1), rtol=0, atol=0)


def test_recomputed_bn_statistics_are_the_mean_of_minibatch_statistics(tiny_checkpoint):
    from gan_probe.data import TensorImageDataset

    space = cf.make_feature_space("disc", tiny_checkpoint, torch.device("cpu"))
    d = space.module
    images = torch.rand(300, 1, 32, 32) * 2 - 1
    n = cf.recompute_bn_statistics(d, space, TensorImageDataset(images, torch.zeros(300)), batch_size=128)
    assert n == 3  # 128 + 128 + 44, every minibatch counted as the authors' iter_data does
    first = d.blocks[0]  # no BN on the input layer: the first BN sees block 1's conv output
    conv = d.blocks[1][0]
    means, vars_ = [], []
    with torch.no_grad():
        for b in images.split(128):
            h = conv(first(b))
            means.append(h.mean((0, 2, 3)))
            vars_.append(h.var((0, 2, 3), unbiased=False))
    bn = d.blocks[1][1]
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, torch.stack(vars_).mean(0), rtol=1e-4, atol=1e-5)
    assert not d.training


# ---------------------------------------------------------------- the L2-SVM

def _toy(noise: float, n=300, dim=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (classes, dim))
    y = np.arange(n) % classes
    x = centers[y] + rng.normal(0, 1, (n, dim))
    flip = rng.random(n) < noise
    y = np.where(flip, rng.integers(0, classes, n), y)
    return x.astype(np.float32), y


@pytest.mark.parametrize("noise, C_", [(0.0, 1e-2), (0.0, 1.0), (0.25, 1e-2), (0.25, 0.5)])
def test_torch_svm_matches_linearsvc(noise, C_):
    x, y = _toy(noise)
    ref = fit_linear_svm(x, y, C_, solver="sklearn", tol=1e-6, max_iter=20000)
    ours = fit_linear_svm(x, y, C_, solver="torch", tol=1e-6)
    xt, _ = _toy(noise, seed=1)
    agree = np.mean(ref.predict(xt) == ours.predict(xt))
    assert agree >= (1.0 if noise == 0 else 0.99)
    # the same problem solved: our objective is no worse than liblinear's, the weights agree closely
    f_ours, f_ref = primal_objective(ours, x, y, C_), primal_objective(ref, x, y, C_)
    assert (f_ours <= f_ref * (1 + 1e-5)).all()
    np.testing.assert_allclose(ours.coef, ref.coef, atol=2e-2 * np.abs(ref.coef).max())
    np.testing.assert_allclose(ours.intercept, ref.intercept, atol=2e-2 * max(1, np.abs(ref.intercept).max()))


def test_torch_svm_few_rows_many_features_matches_linearsvc():
    """n < d (the few-labels case) takes the Newton-in-the-span-of-the-rows path."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.normal(0, 1, (60, 400)) + 0.5 * (np.arange(400) % 3 == y[:, None])).astype(np.float32)
    for C_ in (1e-3, 1.0):
        ref = fit_linear_svm(x, y, C_, solver="sklearn", tol=1e-6, max_iter=20000)
        ours = fit_linear_svm(x, y, C_, solver="torch", tol=1e-6)
        assert (primal_objective(ours, x, y, C_) <= primal_objective(ref, x, y, C_) * (1 + 1e-5)).all()
        xt = (rng.normal(0, 1, (90, 400)) + 0.5 * (np.arange(400) % 3 == (np.arange(90) % 3)[:, None]))
        assert np.mean(ours.predict(xt) == ref.predict(xt)) >= 0.99


def test_torch_svm_binary_and_standardised():
    x, y = _toy(0.1, classes=2)
    shift, scale = x.mean(0).astype(np.float64), x.std(0).astype(np.float64)
    ref = fit_linear_svm(x, y, 0.1, solver="sklearn", tol=1e-6, max_iter=20000, shift=shift, scale=scale)
    ours = fit_linear_svm(x, y, 0.1, solver="torch", tol=1e-6, shift=shift, scale=scale)
    assert ours.coef.shape == ref.coef.shape == (1, x.shape[1])
    assert np.mean(ours.predict(x) == ref.predict(x)) >= 0.99


def test_svm_streams_in_small_chunks_with_the_same_result(tmp_path):
    x, y = _toy(0.2, n=500, dim=64)
    budget = 4 * 64 * 37  # 37 rows of float32 at a time
    assert max(b - a for a, b in row_chunks(len(x), 64, budget)) == 37
    whole = fit_linear_svm(x, y, 0.1, solver="torch")
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float16, shape=x.shape)
    mm[:] = x
    streamed = fit_linear_svm(mm, y, 0.1, solver="torch", chunk_bytes=budget, tol=1e-6)
    in_memory = fit_linear_svm(np.asarray(mm), y, 0.1, solver="torch", tol=1e-6)
    np.testing.assert_allclose(streamed.coef, in_memory.coef, atol=1e-3 * np.abs(in_memory.coef).max())
    assert np.mean(streamed.predict(mm, chunk_bytes=budget) == whole.predict(x)) >= 0.99


def test_one_vs_rest_targets_binary_is_one_column_multiclass_one_per_class():
    from gan_probe.svm import one_vs_rest_targets

    y = np.array([3, 7, 7, 3, 7])
    t = one_vs_rest_targets(y, np.array([3, 7]))
    assert t.shape == (5, 1) and t[:, 0].tolist() == [-1, 1, 1, -1, 1]  # +1 = the larger class, as liblinear
    y = np.array([0, 2, 1, 2])
    t = one_vs_rest_targets(y, np.array([0, 1, 2]))
    assert t.tolist() == [[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [-1, -1, 1]]


def test_armijo_step_is_the_first_halving_that_decreases_the_direct_objective_enough():
    """The step is per class column; f along d from the inner products equals f recomputed from X."""
    from gan_probe.svm import armijo_step, one_vs_rest_targets

    rng = np.random.default_rng(0)
    x = torch.as_tensor(np.c_[rng.normal(size=(40, 5)), np.ones(40)])  # [X, 1]
    t = torch.as_tensor(one_vs_rest_targets(rng.integers(0, 3, 40), np.arange(3)))
    C_ = 0.5
    w = torch.as_tensor(rng.normal(size=(6, 3)))

    def f_direct(w):
        slack = torch.clamp(1 - t * (x @ w), min=0)
        return 0.5 * (w * w).sum(0) + C_ * (slack * slack).sum(0)

    f = f_direct(w)
    grad = w - 2 * C_ * x.T @ (t * torch.clamp(1 - t * (x @ w), min=0))
    d = -grad * torch.tensor([1.0, 8.0, 40.0])  # descent directions too long by different factors
    step = armijo_step(f, (grad * d).sum(0), (w * w).sum(0), (w * d).sum(0), (d * d).sum(0), x @ w, x @ d, t, C_)
    assert step[0] < 1 and len(set(step.tolist())) == 3  # each column backtracked on its own
    for j in range(3):
        s = float(step[j])
        assert f_direct(w + s * d)[j] <= f[j] + 0.01 * s * (grad * d).sum(0)[j]
        if s < 1:  # the step before (twice as long) failed the Armijo test
            assert f_direct(w + 2 * s * d)[j] > f[j] + 0.01 * 2 * s * (grad * d).sum(0)[j]


def test_solver_and_C_are_checked_once_and_name_the_parameter():
    from gan_probe.errors import GanProbeError
    from gan_probe.svm import resolve_solver

    assert resolve_solver("auto") == "torch" and resolve_solver("sklearn") == "sklearn"
    x, y = _toy(0.0, n=20, dim=4)
    with pytest.raises(GanProbeError, match="unknown solver 'liblinear'") as e:
        fit_linear_svm(x, y, 1.0, solver="liblinear")
    assert e.value.param == "solver"
    with pytest.raises(GanProbeError, match="^C must be > 0, got 0") as e:
        fit_linear_svm(x, y, 0.0)
    assert e.value.param == "C"


# ---------------------------------------------------------------- protocols

def test_draws_take_exactly_n_per_class_from_the_pool_only_and_reproducibly():
    labels = np.repeat(np.arange(10), 30)
    pool, val = C.stratified_split(np.arange(300), labels, 0.2)
    a = C.draw_labels(labels, pool, 7, C.draw_rng(3, C.STAGE_TEST, 0))
    b = C.draw_labels(labels, pool, 7, C.draw_rng(3, C.STAGE_TEST, 0))
    other = C.draw_labels(labels, pool, 7, C.draw_rng(4, C.STAGE_TEST, 0))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, other)
    assert np.bincount(labels[a], minlength=10).tolist() == [7] * 10
    assert len(np.unique(a)) == 70 and np.isin(a, pool).all() and not np.isin(a, val).any()
    with pytest.raises(C.GanProbeError, match="fewer than"):
        C.draw_labels(labels, pool, 25, C.draw_rng(0, 0, 0))


def test_svhn_split_is_the_authors_shuffle():
    from sklearn.utils import shuffle

    pool, val = C.shuffled_validation(100, 30)
    order = shuffle(np.arange(100), random_state=np.random.RandomState(42))
    np.testing.assert_array_equal(val, np.sort(order[:30]))
    assert len(pool) == 70 and not np.intersect1d(pool, val).size


def test_protocol_fits_only_on_pool_draws(monkeypatch):
    """Column 0 of the fake features is the row index: every fit must see N per class, pool rows only."""
    rng = np.random.default_rng(0)
    n = 400
    labels = np.arange(n) % 4
    x = np.concatenate([np.arange(n)[:, None], rng.normal(0, 1, (n, 5)) + labels[:, None]], 1).astype(np.float32)
    train = cf.FeatureSet(x, labels)
    test = cf.FeatureSet(x[:100].copy(), labels[:100])
    pool, val = C.stratified_split(np.arange(n), labels, 0.2)
    split = C.Split(train, pool, val, test, np.arange(100))
    seen = []
    real_fit = C.fit_linear_svm

    def spy(xs, ys, c, **kw):
        seen.append(np.asarray(xs)[:, 0].astype(int))
        return real_fit(xs, ys, c, **kw)

    monkeypatch.setattr(C, "fit_linear_svm", spy)
    opts = C.ClassifyOptions(labels_per_class=5, repeats=3, val_draws=2, c_grid=(1e-3, 1e-1), seed=1)
    r1 = C.evaluate_protocol(split, C.PROTOCOLS["digits"], opts)
    assert len(seen) == 2 * 2 + 3
    for rows in seen:
        assert np.isin(rows, pool).all() and not np.isin(rows, val).any()
        assert np.bincount(labels[rows], minlength=4).tolist() == [5] * 4
    assert len(r1["accuracy"]["values"]) == 3 and r1["C"] in (1e-3, 1e-1)
    r2 = C.evaluate_protocol(split, C.PROTOCOLS["digits"], opts)
    assert r1["accuracy"] == r2["accuracy"]


def test_digits_protocol_end_to_end_cached_and_float16(tiny_checkpoint, tmp_path):
    opts = C.ClassifyOptions(repeats=2, val_draws=1, c_grid=(1e-2, 1.0), cache_root=str(tmp_path / "c"))
    first = C.classify(tiny_checkpoint, "disc", "digits", opts)
    again = C.classify(tiny_checkpoint, "disc", "digits", opts)
    assert not first["from_cache"] and again["from_cache"]
    assert first["accuracy"] == again["accuracy"]
    assert first["feature_storage"] == "float16" and first["sizes"] == {"pool": 1077, "validation": 270, "test": 450}
    entry = cf.features_path(first["cache_keys"]["train"], tmp_path / "c")
    assert isinstance(np.load(entry, mmap_mode="r"), np.memmap)
    f32 = C.classify(tiny_checkpoint, "disc", "digits",
                     C.ClassifyOptions(repeats=2, val_draws=1, c_grid=(1e-2, 1.0), use_cache=False))
    assert abs(f32["accuracy"]["mean"] - first["accuracy"]["mean"]) <= 0.01
    entry.write_bytes(b"not a npy file")  # a corrupt entry is a miss, not a crash
    assert not C.classify(tiny_checkpoint, "disc", "digits", opts)["from_cache"]


# ---------------------------------------------------------------- loaders on tiny real-format files

def _write_cifar(root: Path, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 "labels": [int(v) for v in rng.integers(0, 10, per_batch)], "batch_label": name}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)


def _write_svhn(root: Path, n_train=60, n_test=20):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        y = (np.arange(n) % 10) + 1  # 1..10, 10 = digit 0
        x = rng.integers(0, 60, (32, 32, 3, n), dtype=np.uint8)
        x[:, :, 0, :] += (y * 19).astype(np.uint8)  # class signal in the red channel
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y[:, None].astype(np.uint8)})


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks the real files' MD5; our tiny files are otherwise in the real format."""
    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.svhn as tv_svhn

    for module in (tv_cifar, tv_svhn):
        monkeypatch.setattr(module, "check_integrity", lambda *a, **k: True)


def test_cifar10_and_svhn_loaders_read_the_real_formats(tmp_path, no_md5):
    from gan_probe.data import load_dataset

    _write_cifar(tmp_path)
    _write_svhn(tmp_path)
    train = load_dataset("cifar10:train", 32, 3, tmp_path)
    assert len(train) == 20 and len(load_dataset("cifar10:test", 32, 3, tmp_path)) == 4
    x, y = train[0]
    assert x.shape == (3, 32, 32) and -1 <= float(x.min()) and float(x.max()) <= 1 and 0 <= y < 10
    svhn = load_dataset("svhn:train", 32, 3, tmp_path)
    labels = cf.dataset_labels(svhn)
    assert len(svhn) == 60 and labels.min() == 0 and labels.max() == 9
    assert labels[9] == 0  # y = 10 means digit 0


def test_svhn_protocol_end_to_end_through_the_cli(tmp_path, tiny_checkpoint, no_md5, monkeypatch, capsys):
    _write_svhn(tmp_path / "data", n_train=120, n_test=30)
    monkeypatch.setitem(C.SHUFFLED_VALIDATION, "svhn", 20)
    code, out, err = run_cli(["classify", str(tiny_checkpoint), "--features", "pixels", "--dataset", "svhn",
                              "--data-root", str(tmp_path / "data"), "--labels", "50", "--repeats", "4",
                              "--val-draws", "2", "--json", "--out", str(tmp_path / "o"), "--device", "cpu",
                              "--num-workers", "0"],
                             capsys)
    assert code in (0, None), err
    s = json.loads(out)
    assert s["protocol"] == "svhn" and s["labels"] == 50 and s["labels_per_class"] == 5
    assert s["c_grid"] == list(C.AUTHORS_C_GRID) and s["error"]["spread"] == 1.96
    assert len(s["accuracy"]["values"]) == 4 and set(s["accuracy"]) == {"mean", "std", "values"}
    assert s["sizes"] == {"pool": 100, "validation": 20, "test": 30}
    assert s["paper"] is None  # the paper's row is for 1000 labels (100 per class)
    assert json.loads((tmp_path / "o" / "summary.json").read_text()) == s


def test_folder_protocol(tmp_path, tiny_checkpoint, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, cls in enumerate(("cats", "dogs", "owls")):
        (tmp_path / "f" / cls).mkdir(parents=True)
        for i in range(16):
            a = rng.integers(0, 80, (32, 32), dtype=np.uint8)
            a[:, 10 * k:10 * k + 10] += 150  # each class lights up its own band of columns
            Image.fromarray(a).save(tmp_path / "f" / cls / f"{i}.PNG")
    code, out, err = run_cli(["classify", str(tiny_checkpoint), "--features", "pixels", "--dataset",
                              str(tmp_path / "f"), "--labels-per-class", "3", "--repeats", "2", "--val-draws",
                              "1", "--json", "--out", str(tmp_path / "o"), "--num-workers", "0"], capsys)
    assert code in (0, None), err
    s = json.loads(out)
    assert s["protocol"] == "folder" and s["sizes"]["test"] == 12 and s["labels"] == 9
    assert s["accuracy"]["mean"] > 0.9, json.dumps(s)  # linearly separable classes


# ---------------------------------------------------------------- CLI

def test_cli_table_and_default_output_folder(run_copy, capsys):
    code, out, err = run_cli(["classify", str(run_copy), "--features", "random-disc", "--repeats", "2",
                              "--val-draws", "1", "--c", "0.01", "-q"], capsys)
    assert code in (0, None), err
    assert "test accuracy" in out and "random-disc" in out
    s = json.loads((run_copy / "analysis" / "classify" / "summary.json").read_text())
    assert s["C"] == 0.01 and s["features"] == "random-disc" and s["val_draws"] == 0


@pytest.mark.parametrize("args, message", [
    (["--features", "wavelets"], "unknown feature space"),
    (["--dataset", "nope"], "unknown dataset"),
    (["--dataset", "mnist"], "no classification protocol"),
    (["--solver", "liblinear"], "unknown solver"),
    (["--bn-stats", "train"], "unknown --bn-stats"),
    (["--labels-per-class", "500"], "fewer than"),
    (["--labels", "55"], "multiple of the 10 classes"),
    (["--c-grid", "1e-3,x"], "--c-grid"),
    (["--repeats", "0"], "--repeats must be"),
    (["--store", "int8"], "storage dtype"),
])
def test_cli_bad_inputs_exit_1_with_one_line(tiny_checkpoint, capsys, args, message):
    code, out, err = run_cli(["classify", str(tiny_checkpoint), "--c", "0.1", "--repeats", "1", *args], capsys)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_missing_checkpoint_and_data_in_a_subprocess(tmp_path):
    for args, message in ((["classify", str(tmp_path / "none.pt")], "checkpoint not found"),):
        r = subprocess.run([sys.executable, "-m", "gan_probe", *args], capture_output=True, text=True)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_missing_cifar_data_is_one_line(tiny_checkpoint, tmp_path, capsys):
    code, _, err = run_cli(["classify", str(tiny_checkpoint), "--dataset", "cifar10", "--data-root",
                            str(tmp_path / "empty")], capsys)
    assert code == 1 and "CIFAR-10 not found" in err and "Traceback" not in err


def test_device_resident_float16_rows_give_the_same_products():
    from gan_probe.svm import _Rows

    x = np.random.default_rng(0).normal(0, 1, (50, 12)).astype(np.float16)
    v = torch.randn(13, 3)
    streamed = _Rows(x, None, None, torch.device("cpu"), 4 * 12 * 7, resident=False)
    resident = _Rows(x, None, None, torch.device("cpu"), 4 * 12 * 7, resident=True)
    assert resident.stored.dtype == torch.float16 and len(streamed.ranges) == 8
    torch.testing.assert_close(streamed.matmul(v), resident.matmul(v))
    u = torch.randn(50, 3)
    torch.testing.assert_close(streamed.rmatmul(u), resident.rmatmul(u))
    expected = np.concatenate([x.astype(np.float32), np.ones((50, 1), np.float32)], 1) @ v.numpy()
    np.testing.assert_allclose(streamed.matmul(v).numpy(), expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- fair baselines, the grid edge, paired draws

def _digits_pixels_split(scale=1 / 16):
    """sklearn's 8x8 digits as raw 64-d features: on this scale the best C (about 1) lies above
    the grid 1e-3..1e-1 used below."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    fs = cf.FeatureSet((x * scale).astype(np.float32), y)
    rest, test = C.stratified_split(np.arange(len(y)), y, 0.25)
    pool, val = C.stratified_split(rest, y, 0.2)
    return C.Split(fs, pool, val, fs, test)


def test_c_search_extends_past_the_top_edge_until_accuracy_stops_rising():
    split = _digits_pixels_split()
    grid = (1e-3, 1e-2, 1e-1)
    opts = C.ClassifyOptions(labels_per_class=3, repeats=1, val_draws=2, c_grid=grid, extend_grid=True)
    r = C.evaluate_protocol(split, C.PROTOCOLS["digits"], opts)
    scores = {v["C"]: v["accuracy_mean"] for v in r["validation"]}
    assert r["c_grid"] == list(grid) and r["c_extended"][0] == pytest.approx(1.0)
    assert scores[r["c_extended"][0]] > scores[1e-1]  # the top of the grid was not the best
    assert r["C"] not in grid and r["C"] == max(scores, key=lambda c: (scores[c], -c))
    last = r["c_extended"][-1]
    assert scores[last] <= scores[r["C"]] and not r["c_warnings"]  # stopped when it no longer rose
    for extend in (False, None):  # a grid given is searched as given unless extend_grid=True: it warns
        fixed = C.evaluate_protocol(split, C.PROTOCOLS["digits"], C.ClassifyOptions(
            labels_per_class=3, repeats=1, val_draws=2, c_grid=grid, extend_grid=extend))
        assert fixed["C"] == 1e-1 and fixed["c_extended"] == []
        assert len(fixed["c_warnings"]) == 1 and "top of the searched grid" in fixed["c_warnings"][0]


def test_c_search_rule_bottom_edge_bound_and_fixed_protocol_grid():
    def run(score, grid, extend):
        validation, warnings = [], []
        for c in C.c_search(grid, validation, extend, warnings):
            validation.append({"C": c, "accuracy_mean": score(c), "accuracy_std": 0.0})
        return [v["C"] for v in validation], warnings

    tried, warnings = run(lambda c: -abs(np.log10(c) + 5), (1e-3, 1e-2), True)  # best at 1e-5, below the grid
    assert tried == pytest.approx([1e-3, 1e-2, 1e-4, 1e-5, 1e-6]) and not warnings
    tried, warnings = run(lambda c: c, (1e-2, 1e-1), True)  # rising for ever: bounded, then a warning
    assert tried == pytest.approx([1e-2, 1e-1, 1, 10, 100]) and "still rising" in warnings[0]
    tried, warnings = run(lambda c: 1.0, (1e-2, 1e-1), True)  # flat: one step, then stop
    assert tried == pytest.approx([1e-2, 1e-1, 1e-3]) and not warnings
    tried, warnings = run(lambda c: -abs(c - 5e-3), C.AUTHORS_C_GRID, True)  # inside: nothing added
    assert tried == list(C.AUTHORS_C_GRID) and not warnings
    assert not C.PROTOCOLS["svhn"].extend_grid and C.PROTOCOLS["digits"].extend_grid
    tried, warnings = run(lambda c: c, C.AUTHORS_C_GRID, C.PROTOCOLS["svhn"].extend_grid)
    assert tried == list(C.AUTHORS_C_GRID) and "part of this protocol" in warnings[0]


def test_paired_comparison_uses_identical_draws():
    split = _digits_pixels_split()
    other = C.Split(cf.FeatureSet(np.sqrt(split.train.features), split.train.labels), split.pool, split.validation,
                    cf.FeatureSet(np.sqrt(split.test.features), split.test.labels), split.test_rows)
    opts = C.ClassifyOptions(labels_per_class=3, repeats=4, val_draws=1, c_grid=(1e-2, 1e-1), seed=5)
    a = {**C.evaluate_protocol(split, C.PROTOCOLS["digits"], opts), "features": "a"}
    b = {**C.evaluate_protocol(other, C.PROTOCOLS["digits"], opts), "features": "b"}
    expected = [cf.indices_digest(C.draw_labels(split.train.labels, split.pool, 3, C.draw_rng(5, C.STAGE_TEST, r)))
                for r in range(4)]
    assert a["draws"] == b["draws"] == expected and len(set(expected)) == 4
    p = C.paired_comparison(a, b)
    d = np.asarray(a["accuracy"]["values"]) - np.asarray(b["accuracy"]["values"])
    assert p["difference"]["values"] == d.tolist() and p["draws"] == 4 and p["same_draws"]
    assert p["difference"]["mean"] == pytest.approx(d.mean()) and p["difference"]["std"] == pytest.approx(d.std())
    assert p["favour_features"] + p["favour_baseline"] + p["ties"] == 4
    assert p["favour_features"] == int((d > 0).sum())
    c = {**C.evaluate_protocol(split, C.PROTOCOLS["digits"], C.ClassifyOptions(
        labels_per_class=3, repeats=4, val_draws=1, c_grid=(1e-2, 1e-1), seed=6)), "features": "c"}
    with pytest.raises(AssertionError, match="different label draws"):
        C.paired_comparison(a, c)


def _paired(mean, std, n=10, wins=6):
    return {"random-disc": {"draws": n, "difference": {"mean": mean, "std": std}, "favour_features": wins,
                            "favour_baseline": n - wins}}


def test_verdict_says_nothing_measurable_within_the_spread():
    v = C.verdict("disc", _paired(0.0016, 0.0083))
    assert v["gain_over_random"] is False and "add nothing measurable over a random network" in v["text"]
    assert "+0.16 ± 0.83" in v["text"]
    assert C.verdict("disc", _paired(0.02, 0.005))["gain_over_random"] is True
    assert "worse" in C.verdict("disc", _paired(-0.02, 0.005))["text"]
    for none in (C.verdict("disc", {}), C.verdict("disc", _paired(0.05, 0.0, n=1)), C.verdict("random-disc", {})):
        assert none["gain_over_random"] is None and none["text"].startswith("no verdict")


def test_fair_random_baseline_recomputes_bn_and_its_c_is_inside_the_grid(monkeypatch):
    """On the shipped digits model the random D's BatchNorm statistics are re-estimated by default
    and its best C is then an inside point of the default grid (with the initial statistics it is 10,
    the top: docs/classify.md)."""
    seen = []
    real = cf.recompute_bn_statistics

    def spy(module, *a, **k):
        n = real(module, *a, **k)
        bn = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        seen.append(all(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in bn))
        return n

    monkeypatch.setattr(cf, "recompute_bn_statistics", spy)
    r = C.classify(ROOT / "reference_models" / "digits", "random-disc", "digits",
                   C.ClassifyOptions(labels_per_class=3, repeats=1, val_draws=2, use_cache=False))
    assert seen == [True] and r["bn_stats"] == "recompute"
    assert min(C.WIDE_C_GRID) < r["C"] < max(C.WIDE_C_GRID) and r["c_extended"] == [] and not r["c_warnings"]


def test_run_classify_reports_baselines_paired_over_the_same_draws(tiny_checkpoint, tmp_path):
    opts = C.ClassifyOptions(labels_per_class=2, repeats=3, val_draws=1, c_grid=(1e-2, 1.0))
    s = C.run_classify(tiny_checkpoint, "disc", "digits", opts, out=tmp_path / "o")
    assert set(s["baselines"]) == set(s["paired"]) == {"random-disc", "pixels"}
    assert s["bn_stats"] == "eval" and s["baselines"]["random-disc"]["bn_stats"] == "recompute"
    for name, b in s["baselines"].items():
        assert b["draws"] == s["draws"] and len(s["draws"]) == 3
        d = np.asarray(s["accuracy"]["values"]) - np.asarray(b["accuracy"]["values"])
        assert s["paired"][name]["difference"]["values"] == pytest.approx(d.tolist())
    assert s["verdict"] == C.verdict("disc", s["paired"])
    assert json.loads((tmp_path / "o" / "summary.json").read_text()) == json.loads(json.dumps(s))
    alone = C.run_classify(tiny_checkpoint, "disc", "digits", C.ClassifyOptions(
        labels_per_class=2, repeats=3, val_draws=1, c_grid=(1e-2, 1.0), baselines=()), out=tmp_path / "p")
    assert alone["baselines"] == {} and alone["verdict"]["gain_over_random"] is None
    assert alone["accuracy"] == s["accuracy"] and "--no-baselines" in alone["argv"]
