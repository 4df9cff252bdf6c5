"""Dataset loaders on tiny files written in the real on-disk formats, through torchvision's code."""

import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gan_probe.data import (ImageFolderDataset, image_transform, list_images, load_dataset, parse_dataset)
from gan_probe.errors import GanProbeError


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks the published MD5 of the CIFAR-10 / SVHN files; our tiny copies only have to exist."""
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.svhn as svhn

    exists = lambda path, md5=None: os.path.isfile(path)  # noqa: E731
    monkeypatch.setattr(cifar, "check_integrity", exists)
    monkeypatch.setattr(svhn, "check_integrity", exists)


def write_cifar10(root, n=4):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(range(n))}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck"]}, f)


def test_cifar10(tmp_path, no_md5):
    write_cifar10(tmp_path)
    train = load_dataset("cifar10:train", root=tmp_path)
    test = load_dataset("cifar10:test", root=tmp_path)
    assert len(train) == 20 and len(test) == 4
    x, y = train[1]
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1 and y == 1
    x64, _ = load_dataset("cifar10", image_size=64, root=tmp_path)[0]
    assert x64.shape == (3, 64, 64)


def test_svhn_labels_and_layout(tmp_path, no_md5):
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": X, "y": np.array([[10], [1], [2], [3], [10]], dtype=np.uint8)})
    ds = load_dataset("svhn:test", root=tmp_path)
    assert [ds[i][1] for i in range(5)] == [0, 1, 2, 3, 0]  # 10 means digit 0
    x, _ = ds[0]
    expected = torch.from_numpy(X[:, :, :, 0]).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(x, expected, atol=1e-5)


def write_idx(path, arr):
    magic = {3: 2051, 1: 2049}[arr.ndim]
    with open(path, "wb") as f:
        f.write(struct.pack(">i", magic) + b"".join(struct.pack(">i", s) for s in arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def test_mnist_idx(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = np.zeros((3, 28, 28), np.uint8)
    imgs[1, 10:20, 10:20] = 255
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", imgs)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array([7, 2, 1]))
    ds = load_dataset("mnist", root=tmp_path)
    assert len(ds) == 3 and ds[0][1] == 7
    x, _ = ds[1]
    assert x.shape == (1, 32, 32) and x.max() == 1 and x.min() == -1


def test_image_folder_recursive_mixed_case(tmp_path):
    (tmp_path / "cats" / "deep").mkdir(parents=True)
    (tmp_path / "dogs").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "cats" / "a.PNG")
    Image.new("L", (10, 10), 128).save(tmp_path / "cats" / "deep" / "b.Jpg")
    Image.new("RGBA", (16, 16), (0, 0, 255, 100)).save(tmp_path / "dogs" / "c.png")
    Image.new("P", (16, 16)).save(tmp_path / "dogs" / "d.gif")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    assert len(list_images(tmp_path)) == 4
    ds = load_dataset(str(tmp_path), image_size=32)
    assert isinstance(ds, ImageFolderDataset) and ds.classes == ["cats", "dogs"]
    assert sorted(ds.labels) == [0, 0, 1, 1]
    for i in range(4):
        x, _ = ds[i]
        assert x.shape == (3, 32, 32)
    red, _ = ds[0]
    assert red[0].mean() > 0.99 and red[1].mean() < -0.99


def test_digits_default_and_splits():
    train = load_dataset("digits")
    test = load_dataset("digits:test")
    every = load_dataset("digits:all")
    assert len(train) + len(test) == len(every) == 1797
    assert train.images.shape[1:] == (1, 32, 32)
    # stratified: every class in the test split, about a quarter of each
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 40
    assert not set(train.labels.tolist()) - set(range(10))
    rgb = load_dataset("digits:test", image_size=64, channels=3)
    assert rgb.images.shape[1:] == (3, 64, 64)


def test_digits_read_without_sklearn_equal_sklearn():
    """Digits are read from scikit-learn's CSV without importing it; images, labels and the stored
    split equal load_digits and the seeded stratified train_test_split they stand for."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from gan_probe.data import DIGITS_SPLIT_SEED, DIGITS_TEST_FRACTION, digits_arrays, digits_split_indices

    images, labels = digits_arrays()
    d = load_digits()
    np.testing.assert_array_equal(images, d.images)
    np.testing.assert_array_equal(labels, d.target)
    train, test = train_test_split(np.arange(1797), test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
                                   stratify=d.target)
    np.testing.assert_array_equal(digits_split_indices("test", labels), np.sort(test))
    np.testing.assert_array_equal(digits_split_indices("train", labels), np.sort(train))
    code = ("import sys; from gan_probe.data import load_dataset; load_dataset('digits:test'); "
            "sys.exit('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, "loading digits imported scikit-learn"


def test_errors(tmp_path):
    with pytest.raises(GanProbeError, match="unknown dataset"):
        parse_dataset("cifar11")
    with pytest.raises(GanProbeError, match="no split"):
        parse_dataset("cifar10:val")
    with pytest.raises(GanProbeError, match="gan-probe download cifar10"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(GanProbeError, match="gan-probe download svhn"):
        load_dataset("svhn:extra", root=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanProbeError, match="no images"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(GanProbeError, match="not found"):
        load_dataset("./no/such/folder")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG garbage")
    ds = ImageFolderDataset(tmp_path / "bad", image_transform(32, 3))
    with pytest.raises(GanProbeError, match="x.png"):
        ds[0]


def test_failed_download_says_so_instead_of_asking_for_a_download(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    from gan_probe.data import download

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error no network>")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(GanProbeError, match="could not download MNIST") as e:
        download("mnist", tmp_path)
    assert "gan-probe download" not in str(e.value) and "urlopen error" in str(e.value)


# ---------------------------------------------------------------- the torchvision table
@pytest.mark.parametrize("name, split, expected", [
    ("cifar10", "train", {"train": True}),
    ("cifar10", "test", {"train": False}),
    ("svhn", "extra", {"split": "extra"}),
    ("mnist", "test", {"train": False}),
    ("fashion-mnist", "train", {"train": True}),
    ("celeba", "valid", {"split": "valid", "target_type": "identity"}),
])
def test_each_torchvision_row_calls_its_class_with_its_split(tmp_path, monkeypatch, name, split, expected):
    import torchvision.datasets as tvd

    from gan_probe.data import DATASETS, TORCHVISION_DATASETS

    row = next(r for r in TORCHVISION_DATASETS if r.name == name)
    calls = []

    def fake(root, **kwargs):
        calls.append((root, kwargs))
        return [(torch.zeros(row.channels, row.image_size, row.image_size), 0)]

    monkeypatch.setattr(tvd, row.loader, fake)
    ds = load_dataset(f"{name}:{split}", root=tmp_path)
    assert len(ds) == 1 and len(calls) == 1
    root, kwargs = calls[0]
    assert root == str(tmp_path) and kwargs.pop("download") is False
    transform = kwargs.pop("transform")
    assert kwargs == expected
    # the transform makes the registered channels and size
    assert transform(Image.new("RGB", (50, 40))).shape == (row.channels, row.image_size, row.image_size)
    info = DATASETS[name]
    assert (info.channels, info.image_size, info.splits, info.default_split, info.downloadable) == (
        row.channels, row.image_size, row.splits, "train", True)


def test_the_table_keeps_the_registry_order_and_a_row_is_all_a_new_dataset_needs(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    from gan_probe.data import DATASETS, TorchvisionDataset, register_torchvision

    assert list(DATASETS) == ["digits", "shapes", "cifar10", "svhn", "mnist", "fashion-mnist", "celeba", "lsun", "imagenet32"]
    monkeypatch.setattr("gan_probe.data.DATASETS", dict(DATASETS))
    register_torchvision(TorchvisionDataset("kmnist", "KMNIST", "KMNIST", "train", ("train", "test"), 1, 32,
                                            "Kuzushiji-MNIST (idx files under KMNIST/raw/)"))
    assert parse_dataset("kmnist").split == "train"

    def missing(*args, **kwargs):
        raise RuntimeError("Dataset not found. You can use download=True to download it")

    monkeypatch.setattr(tvd, "KMNIST", missing)
    with pytest.raises(GanProbeError, match=r"KMNIST not found .*gan-probe download kmnist"):
        load_dataset("kmnist:test", root=tmp_path)


@pytest.mark.parametrize("name,how", [("lsun", "LSUN download script"), ("imagenet32", "image-net.org account")])
def test_data_fetched_by_hand_refuses_download_with_how_to_get_it(name, how, tmp_path):
    from gan_probe.data import DATASETS, download

    assert DATASETS[name].downloadable is False
    with pytest.raises(GanProbeError, match=how):
        load_dataset(name, root=tmp_path, download=True)
    with pytest.raises(GanProbeError, match=f"{name} cannot be downloaded by gan-probe"):
        download(name, root=tmp_path)
