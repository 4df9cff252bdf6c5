"""pytorch-fid's statistics files: ``.npz`` with ``mu`` (d,) and ``sigma`` (d, d), read and written
so that files pass both ways between gan-probe and ``python -m pytorch_fid``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from gan_probe.errors import GanProbeError


def npz_keys(path: str | os.PathLike) -> set[str]:
    """The array names in a ``.npz`` (read from the zip directory: no array is loaded)."""
    p = Path(path)
    if not p.is_file():
        raise GanProbeError(f"file not found: {p}")
    try:
        with zipfile.ZipFile(p) as z:
            return {n[:-4] if n.endswith(".npy") else n for n in z.namelist()}
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise GanProbeError(f"{p} is not a readable .npz file ({type(e).__name__})") from e


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) in float64 from a pytorch-fid style ``.npz``; any defect is a GanProbeError."""
    p = Path(path)
    if not p.is_file():
        raise GanProbeError(f"statistics file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "mu" not in z.files or "sigma" not in z.files:
                raise GanProbeError(f"{p} has no 'mu' and 'sigma' arrays (found: {', '.join(z.files) or 'none'}); "
                                    f"write one with `gan-probe score FOLDER --save-stats OUT.npz`")
            mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
    except GanProbeError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise GanProbeError(f"{p} is not a readable .npz statistics file ({type(e).__name__})") from e
    d = mu.shape[0] if mu.ndim == 1 else -1
    if mu.ndim != 1 or sigma.shape != (d, d):
        raise GanProbeError(f"{p}: expected mu of shape (d,) and sigma (d, d), got {mu.shape} and {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise GanProbeError(f"{p}: mu or sigma holds NaN or infinite values")
    return mu, sigma


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray, **extra: np.ndarray) -> Path:
    """Write ``mu``, ``sigma`` (and any extra arrays) as pytorch-fid does (``np.savez_compressed``), atomically."""
    from gan_probe.io import atomic_path

    p = Path(path)
    if p.suffix != ".npz":
        raise GanProbeError(f"path must end in .npz (got {p})", param="path")
    with atomic_path(p) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64), **extra)
    return p
