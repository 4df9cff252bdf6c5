"""Weights the user already has: where to look, how to read them, what their SHA-256 is.

Nothing here downloads. An encoder lists the places it looks (an explicit path, an environment
variable, the torch hub checkpoints folder, the Hugging Face hub cache, OpenAI's CLIP cache);
the first file found is used, and a missing file gives one :class:`GanProbeError` naming the
file and where to put it.

Hashes: every weights file's SHA-256 is computed (memoised on disk by path, size and mtime)
and reported beside every number. It is checked against a *published* hash where one exists:
OpenAI's CLIP files carry theirs in the download URL, and a file in the Hugging Face hub cache
is stored under its LFS object id, which is the SHA-256 the hub publishes for it. A file that
does not match is still used (a stand-in, a fine-tune) but says so: ``matches_published`` is False.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gan_probe.errors import GanProbeError

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    found_in: str  # "the weights argument", "$GAN_PROBE_...", "the torch hub cache", ...
    published_sha256: str | None = None  # the publisher's hash, where one is known


@dataclass(frozen=True)
class Candidate:
    """One place an encoder looks: ``locate()`` returns the file there, or None."""

    where: str
    locate: Callable[[], WeightsFile | None]


def torch_hub_checkpoint(filename: str) -> Path:
    """``$TORCH_HOME/hub/checkpoints/<filename>`` (where ``torch.hub.load`` keeps weights)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub`` (``~/.cache/huggingface/hub``)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "huggingface" / "hub"


def hf_cached_file(repo_id: str, filenames: tuple[str, ...]) -> WeightsFile | None:
    """The first of ``filenames`` in the cached snapshot of ``repo_id`` (the ``main`` ref's snapshot
    first, then the newest other). Its published SHA-256 is the name of the blob it links to."""
    repo_dir = hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))
    snaps = repo_dir / "snapshots"
    if not snaps.is_dir():
        return None
    order = sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    main_ref = repo_dir / "refs" / "main"
    if main_ref.is_file():
        head = snaps / main_ref.read_text().strip()
        order = [head] + [p for p in order if p != head]
    for snap in order:
        for name in filenames:
            f = snap / name
            if f.is_file():
                blob = Path(os.path.realpath(f)).name
                return WeightsFile(f, f"the Hugging Face hub cache ({repo_id})",
                                   blob if _SHA256_RE.match(blob) else None)
    return None


def hf_candidate(repo_id: str, filenames: tuple[str, ...]) -> Candidate:
    where = str(hf_hub_cache() / ("models--" + repo_id.replace("/", "--")))
    return Candidate(f"{where} ({repo_id})", lambda: hf_cached_file(repo_id, filenames))


def file_candidate(path: Path, found_in: str, published_sha256: str | None = None) -> Candidate:
    return Candidate(str(path), lambda: WeightsFile(path, found_in, published_sha256) if path.is_file() else None)


def find_weights(what: str, candidates: list[Candidate], *, path: str | os.PathLike | None = None,
                 env: str | None = None, get_it: str = "", known: dict[str, str] | None = None) -> WeightsFile:
    """The weights file for ``what``: ``path`` if given, else ``$env``, else the first candidate found.
    ``known``: file name -> published SHA-256, for files given by path. ``get_it``: how to obtain
    the file, for the one-line error when nothing is found."""
    known = known or {}
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GanProbeError(f"weights {p} not found (the {what} weights file)", param="weights")
        return WeightsFile(p, "the weights argument", known.get(p.name))
    if env and os.environ.get(env):
        p = Path(os.environ[env]).expanduser()
        if not p.is_file():
            raise GanProbeError(f"{what} weights not found: {p} (from ${env})")
        return WeightsFile(p, f"${env}", known.get(p.name))
    for c in candidates:
        found = c.locate()
        if found is not None:
            return found
    places = "; ".join(c.where for c in candidates)
    raise GanProbeError(f"the {what} weights are not here (looked in: {places}): {get_it}"
                        + (f" (or give the file's path: --weights PATH, weights= in Python; or set ${env})" if env else ""))


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, memoised in the process and in gan-probe's cache (by path, size, mtime)."""
    st = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    import numpy as np

    from gan_probe.cache import cache_key, file_sha256, load_arrays, save_arrays

    key = cache_key(kind="sha256", path=path, size=size, mtime_ns=mtime_ns)
    hit = load_arrays("weights-sha256", key)
    if hit is not None and "sha256" in hit and _SHA256_RE.match(str(hit["sha256"])):
        return str(hit["sha256"])
    digest = file_sha256(path)
    try:
        save_arrays("weights-sha256", key, {"sha256": np.array(digest)})
    except OSError:  # a read-only cache only costs the next run a re-hash
        pass
    return digest


def read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """The tensors in a weights file: safetensors, a torch-saved (state) dict (read with
    ``weights_only=True``), or a TorchScript archive (OpenAI's CLIP ``.pt``; its ``state_dict()``)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        if _is_torchscript(path):
            with warnings.catch_warnings():  # torch.jit.load is deprecated; OpenAI's file still needs it
                warnings.simplefilter("ignore", FutureWarning)
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except GanProbeError:
        raise
    except Exception as e:  # truncated file, not a weights file, refused pickle
        raise GanProbeError(f"{path} is not a readable {what} weights file ({type(e).__name__})") from e
    for wrapper in ("state_dict", "model", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GanProbeError(f"{path} does not hold a state dict of tensors ({what} weights expected)")
    return state


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def weights_notes(path, sha: str, published: str | None) -> list[str]:
    """What a result must say about a weights file: no published hash to check, or not the published file."""
    if published is None:
        return [f"{path}: no published SHA-256 is known for this file; its SHA-256 is {sha}"]
    if sha != published:
        return [f"{path} is not the published file (SHA-256 {sha[:12]}..., published {published[:12]}...): "
                "numbers will not match other tools'"]
    return []
