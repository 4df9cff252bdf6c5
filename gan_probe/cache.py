"""A content-keyed, atomically written on-disk cache of numpy arrays.

Used for feature statistics (scoring) and extracted features (classification).
A key is the SHA-256 of a canonical JSON description of everything the result
depends on (the source's content fingerprint, the extractor, the preprocessing);
an entry is one ``.npz`` written through a temp file + rename, so a killed write
never leaves a half entry that a later run would trust. A corrupt entry is
treated as a miss and removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from gan_probe.io import atomic_path

CACHE_ENV = "GAN_PROBE_CACHE"


def cache_dir() -> Path:
    """``$GAN_PROBE_CACHE``, else ``$XDG_CACHE_HOME/gan-probe/cache`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gan-probe" / "cache"


def cache_key(**parts: Any) -> str:
    """SHA-256 (hex) of the parts as canonical JSON (sorted keys; paths as strings)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_path(kind: str, key: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / kind / f"{key}.npz"


def load_arrays(kind: str, key: str, root: Path | None = None) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None on a miss (a corrupt entry counts as a miss and is removed)."""
    path = entry_path(kind, key, root)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        path.unlink(missing_ok=True)
        return None


def save_arrays(kind: str, key: str, arrays: dict[str, np.ndarray], root: Path | None = None) -> Path:
    path = entry_path(kind, key, root)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def files_fingerprint(files: Iterable[Path]) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of each file: changes when any file is added, removed or rewritten."""
    out = []
    for f in files:
        st = f.stat()
        out.append((str(Path(f).resolve()), st.st_size, st.st_mtime_ns))
    return out


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
