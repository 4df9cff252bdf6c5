"""Seeded folders of random PNG images: the input of the speed benchmarks and of the scoring tests.

The benchmarks import it from beside them (``python benchmarks/x.py`` puts this folder on the path);
the tests load it by file (tests/scoring/scoring_helpers.py), as tests/test_gpu_bench.py loads its
script. It is not part of the package: no user command makes noise images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_images(folder: Path, n: int, seed: int, size: int = 32) -> Path:
    """``n`` RGB PNGs of ``size`` px in ``folder`` (00000.png, ...): random 4x4 colours of ``seed``,
    bilinearly upsampled, so that they are smooth enough for an image network to tell apart."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:05d}.png")
    return folder
