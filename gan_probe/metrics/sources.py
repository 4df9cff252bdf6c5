"""Image sources, one abstraction for every metric: what a user can score.

- an image folder: recursive, extensions in any case; grayscale / RGBA / palette images are
  converted to RGB (PIL's ``convert("RGB")``, as pytorch-fid); images of mixed sizes are each
  resized on their own; decoded in DataLoader worker processes;
- a ``.npz`` of statistics (``mu``, ``sigma``: pytorch-fid, TTUR, clean-fid, ADM reference batches;
  see :mod:`gan_probe.metrics.statsfile`): FID only;
- an image array: a ``.npz`` whose ``arr_0`` is N x H x W x 3 uint8 (ADM / guided-diffusion
  samples; told apart from statistics by its keys) or a ``.npy`` of the same; N x H x W (gray) and
  N x H x W x 1 / 4 are accepted too; read batch by batch from the file, never all in memory;
- a ``.zip`` or ``.tar`` (``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) of images, read in place:
  nothing is extracted; members with absolute paths or ``..`` (and links) are ignored with a note;
- a checkpoint or RUN_DIR: ``n`` samples generated with a seed, batch by batch (never all in
  memory), quantized to uint8 exactly as ``gan-probe sample`` writes its PNGs, so scoring a
  checkpoint equals scoring the folder ``gan-probe sample`` writes with the same seed;
- a dataset name with split (``digits``, ``cifar10:test``), at its native size, quantized to uint8.

Every image is decoded by :func:`decode_rgb`, which refuses decompression bombs (more pixels than
PIL's ``Image.MAX_IMAGE_PIXELS``) with one line instead of PIL's traceback.

Every source yields uint8 RGB batches (B x 3 x H x W tensors, or lists of 3 x H x W tensors when
sizes differ) and a content fingerprint for the statistics cache. torch is imported lazily, so
opening ``.npz`` sources stays fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from gan_probe.errors import GanProbeError

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
IMAGE_ARRAY_KEY = "arr_0"  # np.savez's name for its first array: ADM / guided-diffusion samples


@dataclass
class Source:
    spec: str  # what the user typed
    kind: str  # folder | npz | checkpoint | dataset
    n: int | None  # number of images (None: statistics only)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    files: list[Path] | None = None
    seed: int | None = None
    data_root: str | None = None
    download: bool = False
    skip_bad: bool = False
    skipped: list[str] = field(default_factory=list)  # "path (reason)" of each image skipped under --skip-bad
    members: list[str] | None = None  # archive members read (zip / tar)
    array: "ArrayFile | None" = None  # image array (.npz arr_0 / .npy)
    notes: list[str] = field(default_factory=list)  # told to the user with the result (ignored members)

    @property
    def has_images(self) -> bool:
        return self.kind != "npz"

    def describe(self) -> str:
        if self.kind == "npz":
            return f"{self.spec} (statistics)"
        if self.kind == "checkpoint":
            return f"{self.spec} ({self.n} samples, seed {self.seed})"
        return f"{self.spec} ({self.n} images)"

    def batches(self, batch_size: int = 50, num_workers: int = 0,
                device: str = "cpu", rows: range | None = None) -> Iterator:
        """uint8 RGB batches: B x 3 x H x W tensors, or lists of 3 x H x W tensors of mixed sizes.

        ``rows``: only images ``rows`` (one process's share, :func:`gan_probe.distributed.shard`:
        files, archive members, array rows, dataset indices or generated samples, in order);
        default all."""
        rows = range(self.n or 0) if rows is None else rows
        if self.kind == "folder":
            yield from _folder_batches(self, batch_size, num_workers, rows)
        elif self.kind == "archive":
            yield from _archive_batches(self, batch_size, num_workers, rows)
        elif self.kind == "array":
            yield from _array_batches(self, batch_size, rows)
        elif self.kind == "checkpoint":
            yield from _checkpoint_batches(self, batch_size, device, rows)
        elif self.kind == "dataset":
            yield from _dataset_batches(self, batch_size, num_workers, rows)
        else:
            raise GanProbeError(f"{self.spec} holds statistics, not images")


def open_source(spec: str | os.PathLike, *, n: int = 10_000, seed: int = 0, skip_bad: bool = False,
                data_root: str | os.PathLike | None = None, download: bool = False) -> Source:
    """Recognise what ``spec`` names (see the module doc) and check it is usable now."""
    text = str(spec)
    p = Path(text).expanduser()
    low = text.lower() if not p.is_dir() else ""  # a folder is read as a folder, whatever its name ends in
    if low.endswith(".npz"):
        return _npz_source(text, p)
    if low.endswith(".npy"):
        return _array_source(text, p, None)
    if low.endswith(".zip") or low.endswith(TAR_SUFFIXES):
        return _archive_source(text, p, skip_bad)
    model = spec if hasattr(spec, "cli_options") else p  # a ModelSpec carries --class / --psi / --trust-pickle
    if p.is_dir() and ((p / "checkpoints" / "last.pt").is_file() or (p / "last.pt").is_file()):
        return _checkpoint_source(text, model, n, seed)
    if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return _checkpoint_source(text, model, n, seed)
    from gan_probe.models.sources import is_foreign

    if is_foreign(p):  # a TorchScript file, model card or StyleGAN pickle: a generator too
        return _checkpoint_source(text, model, n, seed)
    if model is not p and model.has_options():
        raise GanProbeError(f"{text} is not a model: class_index, psi and trust_pickle apply to a generator")
    if p.is_dir():
        return _folder_source(text, p, skip_bad)
    if p.exists():
        raise GanProbeError(f"{p} is neither an image folder, a .npz / .npy file, a .zip / .tar of images "
                            f"nor a checkpoint")
    return _dataset_source(text, data_root, download)


def _folder_source(text: str, p: Path, skip_bad: bool) -> Source:
    from gan_probe.cache import files_fingerprint
    from gan_probe.data import IMAGE_EXTENSIONS, list_images

    files = list_images(p)
    if not files:
        raise GanProbeError(f"no images found in {p} (looked recursively for {' '.join(IMAGE_EXTENSIONS)}, "
                            f"any case)")
    # skip_bad is part of the key: a cached result that skipped files never answers a strict run
    return Source(text, "folder", len(files), {"folder": files_fingerprint(files), "skip_bad": skip_bad},
                  path=p, files=files, skip_bad=skip_bad)


def _checkpoint_source(text: str, p: Path, n: int, seed: int) -> Source:
    from gan_probe.checkpoint import resolve_checkpoint

    if n < 2:
        raise GanProbeError(f"n must be at least 2 to score a checkpoint (got {n})", param="n")
    from gan_probe.models.sources import model_fingerprint

    ckpt = resolve_checkpoint(p)
    fp = {"checkpoint": model_fingerprint(ckpt), "n": n, "seed": seed, "samples": "uint8 as gan-probe sample"}
    return Source(text, "checkpoint", n, fp, path=ckpt, seed=seed)


def _dataset_source(text: str, data_root, download: bool) -> Source:
    from gan_probe.data import default_data_root, load_dataset, parse_dataset

    spec = parse_dataset(text)  # unknown name / missing folder -> GanProbeError
    root = Path(data_root).expanduser() if data_root else default_data_root()
    ds = load_dataset(spec, root=root, download=download)  # missing data -> GanProbeError naming the fix
    fp = {"dataset": str(spec), "root": str(root.resolve()), "n": len(ds)}
    return Source(text, "dataset", len(ds), fp, data_root=str(root), download=download)


# ---- folders: decode in worker processes; errors travel back as values, never as worker tracebacks ----

class _DecodeFolder:
    """A map-style dataset: index -> (index, uint8 3 x H x W tensor, or the error text)."""

    def __init__(self, files: list[Path]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return i, decode_rgb(self.files[i])


def decode_rgb(path, name: str | None = None):
    """uint8 3 x H x W tensor of the image (PIL ``convert("RGB")``), or an error string.

    ``path``: a file path or a binary file object (an archive member; ``name`` names it). An image
    of more pixels than PIL's ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb) is refused from
    its header, before anything is decoded."""
    import warnings

    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if (refusal := bomb_refusal(im.size)) is not None:
                    return refusal
                im.load()
                arr = np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as e:  # over twice the limit: PIL refuses at open
        return bomb_refusal(None, str(e))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        return "empty image"
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def bomb_refusal(size: tuple[int, int] | None, pil_message: str = "") -> str | None:
    """The one-line refusal of an image over PIL's decompression-bomb limit, or None when it is under."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if size is None:
        digits = [int(t) for t in pil_message.replace("(", " ").replace(")", " ").split() if t.isdigit()]
        pixels = digits[0] if digits else None
    else:
        pixels = size[0] * size[1]
        if limit is None or pixels <= limit:
            return None
    what = f"{size[0]} x {size[1]} = {pixels:,} pixels" if size else f"{pixels:,} pixels" if pixels else "too many pixels"
    return (f"refused as a possible decompression bomb: {what}, over PIL's limit of {limit:,} "
            f"(PIL.Image.MAX_IMAGE_PIXELS)")


def _collate_items(items):
    return items


def _folder_batches(src: Source, batch_size: int, num_workers: int, rows: range) -> Iterator:
    files = src.files[rows.start:rows.stop]
    yield from _decoded_batches(src, _DecodeFolder(files), [str(f) for f in files], batch_size, num_workers)


def _decoded_batches(src: Source, dataset, names: list[str], batch_size: int, num_workers: int) -> Iterator:
    """Batches of a dataset of (index, tensor or error text) items; an error stops with one line
    naming the image, or is recorded in ``src.skipped`` under skip_bad."""
    import torch
    from torch.utils.data import DataLoader

    if len(dataset) == 0:  # an empty share (more processes than batches)
        src.skipped.clear()
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=_collate_items, persistent_workers=False,
                        prefetch_factor=4 if num_workers > 0 else None)
    src.skipped.clear()
    for items in loader:
        images = []
        for i, item in items:
            if isinstance(item, str):
                if not src.skip_bad:
                    raise GanProbeError(f"cannot read image {names[i]} ({item}); "
                                        f"pass --skip-bad to skip unreadable images")
                src.skipped.append(f"{names[i]} ({item})")
                continue
            images.append(item)
        if images:
            yield _stack_if_same_size(images, torch)


def _stack_if_same_size(images: list, torch):
    if all(im.shape == images[0].shape for im in images):
        return torch.stack(images)
    return images


# ---- archives (.zip, .tar): members read in place, nothing extracted ----

def _archive_source(text: str, p: Path, skip_bad: bool) -> Source:
    from gan_probe.data import IMAGE_EXTENSIONS

    if not p.is_file():
        raise GanProbeError(f"archive not found: {p}")
    members, ignored = list_archive_images(p)
    if not members:
        raise GanProbeError(f"no images found in {p} (looked for {' '.join(IMAGE_EXTENSIONS)} members, any case"
                            + (f"; ignored {len(ignored)} unsafe member(s)" if ignored else "") + ")")
    st = p.stat()
    src = Source(text, "archive", len(members), {"archive": [str(p.resolve()), st.st_size, st.st_mtime_ns],
                                                 "skip_bad": skip_bad}, path=p, members=members, skip_bad=skip_bad)
    if ignored:
        src.notes.append(f"ignored {len(ignored)} archive member(s) of {p} with an absolute path, '..' or a link: "
                         + ", ".join(ignored[:3]) + (" ..." if len(ignored) > 3 else ""))
    return src


def unsafe_member_name(name: str) -> bool:
    """True for a member path that could point outside a folder it were extracted to: absolute
    (``/x``, ``\\x``, ``C:x``) or holding a ``..`` part."""
    from pathlib import PurePosixPath

    norm = name.replace("\\", "/")
    return (norm.startswith("/") or (len(norm) > 1 and norm[1] == ":")
            or ".." in PurePosixPath(norm).parts)


def list_archive_images(p: Path) -> tuple[list[str], list[str]]:
    """(image members to read, sorted; unsafe members ignored) of a zip or tar file."""
    import stat
    import tarfile
    import zipfile

    from gan_probe.data import IMAGE_EXTENSIONS

    def is_image(name: str) -> bool:
        return Path(name).suffix.lower() in IMAGE_EXTENSIONS

    keep, ignored = [], []
    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as zf:
                for info in zf.infolist():
                    if info.is_dir() or not is_image(info.filename):
                        continue
                    link = stat.S_ISLNK(info.external_attr >> 16)
                    (ignored if link or unsafe_member_name(info.filename) else keep).append(info.filename)
        else:
            with tarfile.open(p) as tf:
                for m in tf.getmembers():
                    if m.isdir() or not is_image(m.name):
                        continue
                    (keep if m.isfile() and not unsafe_member_name(m.name) else ignored).append(m.name)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as e:
        raise GanProbeError(f"{p} is not a readable .zip or .tar archive ({type(e).__name__})") from e
    return sorted(set(keep)), ignored


class _DecodeArchive:
    """index -> (index, uint8 tensor or error text) of one archive member; each process opens the
    archive once, on first use (DataLoader workers get their own handle)."""

    def __init__(self, path: Path, members: list[str]):
        self.path, self.members = path, members
        self._pid, self._open = None, None

    def __len__(self) -> int:
        return len(self.members)

    def __getstate__(self):
        return {"path": self.path, "members": self.members, "_pid": None, "_open": None}

    def _reader(self):
        import io
        import tarfile
        import zipfile

        if self._pid != os.getpid():
            if zipfile.is_zipfile(self.path):
                zf = zipfile.ZipFile(self.path)
                self._open = lambda name: io.BytesIO(zf.read(name))
            else:
                tf = tarfile.open(self.path)
                index = {m.name: m for m in tf.getmembers() if m.isfile()}
                self._open = lambda name: io.BytesIO(tf.extractfile(index[name]).read())
            self._pid = os.getpid()
        return self._open

    def __getitem__(self, i: int):
        name = self.members[i]
        try:
            data = self._reader()(name)
        except Exception as e:  # a truncated or corrupt archive: told as this member's error
            return i, f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
        return i, decode_rgb(data, name)


def _archive_batches(src: Source, batch_size: int, num_workers: int, rows: range) -> Iterator:
    members = src.members[rows.start:rows.stop]
    names = [f"{src.path}:{m}" for m in members]
    yield from _decoded_batches(src, _DecodeArchive(src.path, members), names, batch_size, num_workers)


# ---- .npz: statistics or an image array, told apart by the keys; .npy: an image array ----

def _npz_source(text: str, p: Path) -> Source:
    from gan_probe.metrics.statsfile import npz_keys

    keys = npz_keys(p)
    st = p.stat()
    if {"mu", "sigma"} <= keys:  # statistics (pytorch-fid, TTUR, clean-fid, ADM reference batches)
        return Source(text, "npz", None, {"npz": [str(p.resolve()), st.st_size, st.st_mtime_ns]}, path=p)
    if IMAGE_ARRAY_KEY in keys:
        return _array_source(text, p, IMAGE_ARRAY_KEY)
    raise GanProbeError(f"{p} holds neither statistics ('mu' and 'sigma') nor an image array ('{IMAGE_ARRAY_KEY}'); "
                        f"found: {', '.join(sorted(keys)) or 'no arrays'}")


@dataclass
class ArrayFile:
    """Where an image array's data lies: a .npy file, or the ``key``.npy member of a .npz."""

    path: Path
    key: str | None
    shape: tuple[int, ...]


def _read_header(f):
    import numpy as np

    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _array_source(text: str, p: Path, key: str | None) -> Source:
    import zipfile

    if not p.is_file():
        raise GanProbeError(f"image array file not found: {p}")
    try:
        if key is None:
            with open(p, "rb") as f:
                shape, fortran, dtype = _read_header(f)
        else:
            with zipfile.ZipFile(p) as zf, zf.open(key + ".npy") as f:
                shape, fortran, dtype = _read_header(f)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise GanProbeError(f"{p} is not a readable numpy array file ({type(e).__name__})") from e
    where = f"{p}" + (f" ({key})" if key else "")
    ok_shape = len(shape) == 3 or (len(shape) == 4 and shape[3] in (1, 3, 4))
    if not ok_shape or fortran:
        raise GanProbeError(f"{where}: expected images as N x H x W x 3 (or x 1, x 4, or N x H x W) in C order, "
                            f"got shape {tuple(shape)}{' in Fortran order' if fortran else ''}")
    if dtype.str.lstrip("<>|=") != "u1":
        raise GanProbeError(f"{where}: expected uint8 pixels, got {dtype}; convert floats in [0, 1] with "
                            f"(x * 255).round().clip(0, 255).astype(np.uint8)")
    if shape[0] == 0 or shape[1] == 0 or shape[2] == 0:
        raise GanProbeError(f"{where} holds no images (shape {tuple(shape)})")
    st = p.stat()
    fp = {"array": [str(p.resolve()), st.st_size, st.st_mtime_ns, key]}
    return Source(text, "array", int(shape[0]), fp, path=p, array=ArrayFile(p, key, tuple(int(d) for d in shape)))


def _array_batches(src: Source, batch_size: int, rows: range) -> Iterator:
    """Consecutive slices of the array (images ``rows``), read from the file one batch at a time."""
    import contextlib
    import zipfile

    import numpy as np
    import torch

    a = src.array
    per_image = int(np.prod(a.shape[1:]))
    with contextlib.ExitStack() as stack:
        if a.key is None:
            f = stack.enter_context(open(a.path, "rb"))
        else:
            f = stack.enter_context(stack.enter_context(zipfile.ZipFile(a.path)).open(a.key + ".npy"))
        _read_header(f)
        if rows.start:
            f.seek(f.tell() + rows.start * per_image)  # a zip member seeks forward by reading
        for start in range(rows.start, rows.stop, batch_size):
            count = min(batch_size, rows.stop - start)
            raw = f.read(count * per_image)
            if len(raw) != count * per_image:
                raise GanProbeError(f"{a.path} is truncated: its array should hold {a.shape[0]} images")
            x = np.frombuffer(raw, np.uint8).reshape((count, *a.shape[1:]))
            if x.ndim == 3:
                x = x[..., None]
            x = torch.from_numpy(x[..., :3].copy()).permute(0, 3, 1, 2)
            yield x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


# ---- checkpoints: seeded samples, batch by batch ----

def _checkpoint_batches(src: Source, batch_size: int, device: str, rows: range) -> Iterator:
    import torch

    from gan_probe.checkpoint import load_generator
    from gan_probe.sampling import generate

    g, config = load_generator(src.path, device)
    for batch in generate(g, config, rows.stop, src.seed, batch_size, device, start=rows.start):
        yield _float_to_uint8_rgb(batch, torch)


def _float_to_uint8_rgb(batch, torch):
    """[-1, 1] float N x C x H x W -> uint8 N x 3 x H x W, rounded as gan-probe sample's PNGs."""
    from gan_probe.sampling import to_uint8

    x = torch.from_numpy(to_uint8(batch)).permute(0, 3, 1, 2)
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


# ---- datasets by name ----

def _dataset_batches(src: Source, batch_size: int, num_workers: int, rows: range) -> Iterator:
    import torch
    from torch.utils.data import DataLoader, Subset

    from gan_probe.data import load_dataset

    ds = load_dataset(src.spec, root=src.data_root, download=src.download)
    if rows != range(len(ds)):
        ds = Subset(ds, list(rows))
    if len(ds) == 0:
        return
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for images, _ in loader:
        yield _float_to_uint8_rgb(images, torch)
