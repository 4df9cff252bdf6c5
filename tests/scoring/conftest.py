"""Fixtures of the scoring tests: two tiny image folders, and every test isolated from the
statistics cache, ``$GAN_PROBE_INCEPTION_WEIGHTS`` and the torch hub cache."""

from __future__ import annotations

import pytest
from scoring_helpers import N_IMAGES, _write_images


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring_images")
    return _write_images(root / "real", N_IMAGES, 0), _write_images(root / "fake", N_IMAGES, 1)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_PROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GAN_PROBE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache

