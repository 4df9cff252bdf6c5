"""Helpers shared by the scoring tests (tests/scoring/): tiny image folders, score options for
the stand-in Inception weights, pytorch-fid's model on the same weights, the one-line error check."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

N_IMAGES = 6


def _benchmark_module(name: str):
    """A module of benchmarks/ (not a package), loaded by its file."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_write_images = _benchmark_module("synthetic_images").write_images  # seeded random PNG folders (the benchmarks' too)


def _pytorch_fid_model(weights: Path, monkeypatch, dims: int = 2048):
    import pytorch_fid.inception as pfi

    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: torch.load(weights, weights_only=True))
    return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]]).eval()


def _options(weights, **kw):
    from gan_probe.metrics.score import ScoreOptions

    base = dict(weights=weights, device="cpu", num_workers=0, batch_size=N_IMAGES, progress=False)
    base.update(kw)
    return ScoreOptions(**base)


def _assert_user_error(code, err, *words):
    assert code == 1
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err

