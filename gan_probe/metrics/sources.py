"""Image sources, one abstraction for every metric: what a user can score.

- an image folder: recursive, extensions in any case; grayscale / RGBA / palette images are
  converted to RGB (PIL's ``convert("RGB")``, as pytorch-fid); images of mixed sizes are each
  resized on their own; decoded in DataLoader worker processes;
- a ``.npz`` of pytorch-fid statistics (``mu``, ``sigma``): FID only;
- a checkpoint or RUN_DIR: ``n`` samples generated with a seed, batch by batch (never all in
  memory), quantized to uint8 exactly as ``gan-probe sample`` writes its PNGs, so scoring a
  checkpoint equals scoring the folder ``gan-probe sample`` writes with the same seed;
- a dataset name with split (``digits``, ``cifar10:test``), at its native size, quantized to uint8.

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
                device: str = "cpu") -> Iterator:
        """uint8 RGB batches: B x 3 x H x W tensors, or lists of 3 x H x W tensors of mixed sizes."""
        if self.kind == "folder":
            yield from _folder_batches(self, batch_size, num_workers)
        elif self.kind == "checkpoint":
            yield from _checkpoint_batches(self, batch_size, device)
        elif self.kind == "dataset":
            yield from _dataset_batches(self, batch_size, num_workers)
        else:
            raise GanProbeError(f"{self.spec} holds statistics, not images")


def open_source(spec: str | os.PathLike, *, n: int = 10_000, seed: int = 0, skip_bad: bool = False,
                data_root: str | os.PathLike | None = None, download: bool = False) -> Source:
    """Recognise what ``spec`` names (see the module doc) and check it is usable now."""
    text = str(spec)
    p = Path(text).expanduser()
    if text.lower().endswith(".npz"):
        if not p.is_file():
            raise GanProbeError(f"statistics file not found: {p}")
        st = p.stat()
        return Source(text, "npz", None, {"npz": [str(p.resolve()), st.st_size, st.st_mtime_ns]}, path=p)
    if p.is_dir() and ((p / "checkpoints" / "last.pt").is_file() or (p / "last.pt").is_file()):
        return _checkpoint_source(text, p, n, seed)
    if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return _checkpoint_source(text, p, n, seed)
    from gan_probe.models.sources import is_foreign

    if is_foreign(p):  # a TorchScript file, model card or StyleGAN pickle: a generator too
        return _checkpoint_source(text, p, n, seed)
    if p.is_dir():
        return _folder_source(text, p, skip_bad)
    if p.exists():
        raise GanProbeError(f"{p} is neither an image folder, a .npz statistics file nor a checkpoint")
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


def decode_rgb(path: Path):
    """uint8 3 x H x W tensor of the image (PIL ``convert("RGB")``), or an error string."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        return "empty image"
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _collate_items(items):
    return items


def _folder_batches(src: Source, batch_size: int, num_workers: int) -> Iterator:
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(_DecodeFolder(src.files), batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=_collate_items, persistent_workers=False,
                        prefetch_factor=4 if num_workers > 0 else None)
    src.skipped.clear()
    for items in loader:
        images = []
        for i, item in items:
            if isinstance(item, str):
                if not src.skip_bad:
                    raise GanProbeError(f"cannot read image {src.files[i]} ({item}); "
                                        f"pass --skip-bad to skip unreadable images")
                src.skipped.append(f"{src.files[i]} ({item})")
                continue
            images.append(item)
        if images:
            yield _stack_if_same_size(images, torch)


def _stack_if_same_size(images: list, torch):
    if all(im.shape == images[0].shape for im in images):
        return torch.stack(images)
    return images


# ---- checkpoints: seeded samples, batch by batch ----

def _checkpoint_batches(src: Source, batch_size: int, device: str) -> Iterator:
    import torch

    from gan_probe.checkpoint import load_generator
    from gan_probe.sampling import generate

    g, config = load_generator(src.path, device)
    for batch in generate(g, config, src.n, src.seed, batch_size, device):
        yield _float_to_uint8_rgb(batch, torch)


def _float_to_uint8_rgb(batch, torch):
    """[-1, 1] float N x C x H x W -> uint8 N x 3 x H x W, rounded as gan-probe sample's PNGs."""
    from gan_probe.sampling import to_uint8

    x = torch.from_numpy(to_uint8(batch)).permute(0, 3, 1, 2)
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


# ---- datasets by name ----

def _dataset_batches(src: Source, batch_size: int, num_workers: int) -> Iterator:
    import torch
    from torch.utils.data import DataLoader

    from gan_probe.data import load_dataset

    ds = load_dataset(src.spec, root=src.data_root, download=src.download)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for images, _ in loader:
        yield _float_to_uint8_rgb(images, torch)
