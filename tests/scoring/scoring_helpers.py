"""Helpers shared by the scoring tests (tests/scoring/): tiny image folders, score options for
the stand-in Inception weights, pytorch-fid's model on the same weights, the one-line error check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

N_IMAGES = 6


def _write_images(folder: Path, n: int, seed: int, size: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:03d}.png")
    return folder


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

