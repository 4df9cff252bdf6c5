"""Small file helpers shared by every command: atomic writes, image saving."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from gan_probe.errors import GanProbeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    A crash or kill mid-write leaves the old file (or none) in place, never a
    truncated one; the temporary file is removed on error.
    """
    path = Path(path)
    if path.is_dir():
        raise GanProbeError(f"{path} is a folder; give a file path to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise GanProbeError(f"cannot write {path}: {e.strerror or e}") from e
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and str(getattr(e, "filename", "")) == tmp:
            # name the file the user asked for, not our temporary one
            raise GanProbeError(f"cannot write {path}: {e.strerror or e}") from e
        raise


def check_writable(path: str | os.PathLike) -> Path:
    """Fail now, before long work, if ``path`` could not be written later."""
    path = Path(path)
    if path.is_dir():
        raise GanProbeError(f"{path} is a folder; give a file path to write")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise GanProbeError(f"cannot write {path}: {parent or path.parent} is not a writable folder")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
