"""Statistics files: ``.npz`` with ``mu`` (d,) and ``sigma`` (d, d), read and written so that files
pass both ways between gan-probe and ``python -m pytorch_fid``.

Read: pytorch-fid's and TTUR's ``.npz``, clean-fid's statistics files (``np.savez_compressed(mu=,
sigma=)``, in ``cleanfid/stats/``), ADM / guided-diffusion reference batches (``mu``, ``sigma`` beside
``mu_s``, ``sigma_s`` and the ``arr_0`` images; the pool3 ``mu`` / ``sigma`` are used). Written:
``mu``, ``sigma`` plus string tags (:data:`TAG_KEYS`: feature space, encoder, weights SHA-256, resize
protocol (``pytorch-fid`` / ``clean``) and its description, dims, N, source, source fingerprint); pytorch-fid ignores keys it does not know.
Two sides whose tags disagree on the protocol (:func:`protocol_mismatch`) are not comparable.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from gan_probe.errors import GanProbeError


TAG_KEYS = ("space", "encoder", "weights_sha256", "protocol", "preprocessing", "dims", "n", "source",
            "source_fingerprint")
PROTOCOL_KEYS = ("space", "encoder", "weights_sha256", "protocol", "dims")  # what must agree for numbers to compare


def load_tags(path: str | os.PathLike) -> dict[str, str]:
    """The tags gan-probe wrote beside ``mu`` / ``sigma`` (empty for other tools' files)."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            return {k: str(z[k][()]) for k in TAG_KEYS if k in z.files and z[k].dtype.kind == "U"}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return {}


def describe_protocol(tags: dict) -> str:
    sha = tags.get("weights_sha256", "?")
    return (f"{tags.get('encoder', '?')}, weights {sha[:12]}, {tags.get('dims', '?')}-d, "
            f"{tags.get('protocol', '?')}")


def protocol_mismatch(a_name: str, a_tags: dict, b_name: str, b_tags: dict) -> str | None:
    """A one-line warning naming both sides when their tags disagree on the protocol; None when they
    agree or either side is untagged (another tool's file: its protocol is unknown)."""
    if not a_tags or not b_tags:
        return None
    if all(a_tags.get(k) == b_tags.get(k) for k in PROTOCOL_KEYS):
        return None
    return (f"protocol mismatch: {a_name} was computed with ({describe_protocol(a_tags)}) but {b_name} with "
            f"({describe_protocol(b_tags)}); numbers between them are not comparable")


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


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray, tags: dict | None = None,
                    **extra: np.ndarray) -> Path:
    """Write ``mu``, ``sigma`` (and any extra arrays) as pytorch-fid does (``np.savez_compressed``), atomically;
    ``tags`` (:data:`TAG_KEYS`) are stored as string arrays, readable without pickle."""
    for k, v in (tags or {}).items():
        if k not in TAG_KEYS:
            raise GanProbeError(f"tags has unknown key {k!r}; known: {', '.join(TAG_KEYS)}", param="tags")
        extra[k] = np.array(str(v))
    from gan_probe.io import atomic_path

    p = Path(path)
    if p.suffix != ".npz":
        raise GanProbeError(f"path must end in .npz (got {p})", param="path")
    with atomic_path(p) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64), **extra)
    return p
