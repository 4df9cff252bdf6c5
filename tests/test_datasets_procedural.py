"""The procedural ``shapes`` dataset: deterministic bytes, shapes, balanced classes, disjoint splits."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from gan_probe import datasets_procedural as P
from gan_probe.data import dataset_channels, load_dataset, parse_dataset
from gan_probe.errors import GanProbeError


def _small(monkeypatch, train=60, test=40):
    monkeypatch.setattr(P, "SHAPES_SPLITS", {"train": train, "test": test})
    P.shapes_arrays.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_cache():
    P.shapes_arrays.cache_clear()
    yield
    P.shapes_arrays.cache_clear()


def test_same_seed_same_bytes_other_seed_other_bytes(monkeypatch):
    _small(monkeypatch)
    x1, y1 = P.shapes_arrays("train", seed=7)
    P.shapes_arrays.cache_clear()
    x2, y2 = P.shapes_arrays("train", seed=7)
    assert x1 is not x2 and x1.tobytes() == x2.tobytes() and np.array_equal(y1, y2)
    x3, _ = P.shapes_arrays("train", seed=8)
    assert x3.tobytes() != x1.tobytes()


def test_test_split_does_not_depend_on_the_train_split(monkeypatch):
    """Each split has its own stream of the seed: resizing train leaves test's bytes alone."""
    _small(monkeypatch, train=30, test=20)
    a, ya = P.shapes_arrays("test")
    _small(monkeypatch, train=50, test=20)
    b, yb = P.shapes_arrays("test")
    assert a.tobytes() == b.tobytes() and np.array_equal(ya, yb)


def test_golden_digest_of_the_default_seed(monkeypatch):
    """The bytes are fixed across machines: numpy's PCG64 stream and elementwise IEEE operations only.
    If this fails after a deliberate generator change, bump SHAPES_VERSION and update the digest."""
    _small(monkeypatch, train=20, test=10)
    x, y = P.shapes_arrays("train")
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]
    assert digest == GOLDEN


GOLDEN = "afc12b20ec821a0d"


def test_shapes_classes_and_value_range(monkeypatch):
    _small(monkeypatch, train=60, test=40)
    x, y = P.shapes_arrays("train")
    assert x.shape == (60, 3, 32, 32) and x.dtype == np.uint8
    assert np.array_equal(np.bincount(y, minlength=10), np.full(10, 6))  # exactly balanced
    assert not x.flags.writeable and not y.flags.writeable
    assert x.min() < 60 and x.max() > 200  # not a constant image: colours, textures and noise
    # the shape is the only class signal, so the per-class mean images differ little from each other,
    # but every class renders something different from the background: no two classes give the same mask
    masks = []
    s = np.linspace(-1, 1, 24)
    gy, gx = np.meshgrid(s, s, indexing="ij")
    for label in range(len(P.SHAPE_CLASSES)):
        m = P._shape_mask(label, gx, gy)
        assert 0.05 < m.mean() < 0.8, P.SHAPE_CLASSES[label]
        masks.append(m)
    for i in range(len(masks)):
        for j in range(i):
            assert (masks[i] != masks[j]).mean() > 0.03, (P.SHAPE_CLASSES[i], P.SHAPE_CLASSES[j])


def test_train_and_test_are_different_images(monkeypatch):
    _small(monkeypatch, train=50, test=50)
    xtr, _ = P.shapes_arrays("train")
    xte, _ = P.shapes_arrays("test")
    train_rows = {row.tobytes() for row in xtr}
    assert not any(row.tobytes() in train_rows for row in xte)


def test_registered_dataset_loads_through_gan_probe(monkeypatch):
    _small(monkeypatch, train=20, test=10)
    spec = parse_dataset("shapes")
    assert spec.split == "train" and dataset_channels(spec) == 3
    ds = load_dataset("shapes:test")
    assert len(ds) == 10
    img, label = ds[3]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and -1 <= img.min() and img.max() <= 1
    x, y = P.shapes_arrays("test")
    assert torch.allclose(img, torch.from_numpy(x[3].astype(np.float32)) / 127.5 - 1)
    assert label == int(y[3])
    gray64, _ = load_dataset("shapes:train", image_size=64, channels=1)[0]
    assert gray64.shape == (1, 64, 64)
    with pytest.raises(GanProbeError, match="no split"):
        parse_dataset("shapes:extra")
