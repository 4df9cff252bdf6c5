"""Seeded sampling from a generator: every sample is tied to (seed, index).

Latents come in fixed blocks of :data:`BLOCK` vectors, each block drawn from its
own generator derived from ``(seed, block)``: sample ``i`` of seed ``s`` is the
same whatever ``n`` or the batch size, so a figure or a metric can be
reproduced exactly, and samples are generated batch by batch, never all at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from gan_probe.device import exact_float32
from gan_probe.errors import GanProbeError

from gan_probe.models import DCGANConfig, Generator, sample_z

BLOCK = 1024


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (numpy's SeedSequence mixing)."""
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, np.uint64)[0] >> 1)


def latents(config: DCGANConfig, seed: int, start: int, count: int) -> torch.Tensor:
    """z for samples ``start .. start+count-1`` of ``seed`` (CPU tensor)."""
    out = []
    i = start
    end = start + count
    while i < end:
        block, offset = divmod(i, BLOCK)
        g = torch.Generator().manual_seed(derive_seed(seed, block))
        z = sample_z(config, BLOCK, g)
        take = min(BLOCK - offset, end - i)
        out.append(z[offset:offset + take])
        i += take
    return torch.cat(out) if out else torch.empty(0, config.nz)


@torch.inference_mode()
def generate(g: Generator, config: DCGANConfig, n: int, seed: int, batch_size: int = 256,
             device: torch.device | str = "cpu", start: int = 0) -> Iterator[torch.Tensor]:
    """Batches of samples ``start .. n-1`` in [-1, 1] (CPU tensors), G in eval mode, each decoded in
    exact float32 (no TF32), so a sampled folder scores as its checkpoint does on any device.
    ``start``: where one process's share begins (sample ``i`` is the same whoever draws it)."""
    g.eval()
    for start in range(start, n, batch_size):
        z = latents(config, seed, start, min(batch_size, n - start)).to(device)
        with exact_float32():
            x = g(z).float().cpu()
        yield x


def quantize(images: torch.Tensor) -> torch.Tensor:
    """N x C x H x W in [-1, 1] -> uint8 N x C x H x W on the same device (rounded as torchvision's
    save_image): what every generated image is scored as, whether written as PNG or not."""
    return ((images.clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """N x C x H x W in [-1, 1] -> N x H x W x C uint8 (rounded as torchvision's save_image)."""
    return quantize(images).permute(0, 2, 3, 1).cpu().numpy()


def save_pngs(images: torch.Tensor, out_dir: str | os.PathLike, start: int) -> list[Path]:
    """Write each image as ``{index:06d}.png`` (grayscale for one channel)."""
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, arr in enumerate(to_uint8(images)):
        p = out_dir / f"{start + k:06d}.png"
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(p)
        paths.append(p)
    return paths


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """A grid image of a batch in [-1, 1] (written atomically)."""
    from torchvision.utils import save_image

    from gan_probe.io import atomic_path

    path = Path(path)
    nrow = nrow or max(1, int(np.ceil(np.sqrt(len(images)))))
    with atomic_path(path) as tmp:
        save_image(images.float() * 0.5 + 0.5, tmp, nrow=nrow, padding=padding, format="png")
    return path


def sample_to_folder(ckpt: str | os.PathLike, out_dir: str | os.PathLike, n: int, seed: int = 0,
                     batch_size: int = 256, device: str | torch.device = "cpu",
                     grid: bool = False) -> dict:
    """``gan-probe sample``: n seeded PNGs; ``grid`` also writes the first 64 as
    ``<out>-grid.png`` beside the folder (not inside it, so the folder stays a clean
    input for ``gan-probe fid``)."""
    from gan_probe.checkpoint import load_generator

    out_dir = Path(out_dir)
    if out_dir.is_dir():
        others = sorted({q.name for q in out_dir.iterdir()} - {f"{i:06d}.png" for i in range(n)})
        if others:
            raise GanProbeError(f"{out_dir} already holds {len(others)} other file(s) (e.g. {others[0]}); sample into "
                                f"an empty folder, so that it holds exactly these {n} samples")
    g, config = load_generator(ckpt, device)
    written = 0
    first = None
    for batch in generate(g, config, n, seed, batch_size, device):
        save_pngs(batch, out_dir, written)
        if first is None:
            first = batch[:64]
        written += len(batch)
    result = {"n": written, "seed": seed, "out": str(out_dir)}
    if grid and first is not None:
        result["grid"] = str(save_grid(first, out_dir.with_name(out_dir.name + "-grid.png")))
    return result


ARRAY_SUFFIXES = (".npz", ".npy")  # `sample --out samples.npz`: one image array instead of a folder of PNGs


def sample_to_array(ckpt: str | os.PathLike, out: str | os.PathLike, n: int, seed: int = 0,
                    batch_size: int = 256, device: str | torch.device = "cpu") -> dict:
    """``gan-probe sample --out FILE.npz|.npy``: the n seeded samples as one N x H x W x 3 uint8 array,
    rounded exactly as the PNGs of :func:`sample_to_folder` (one channel repeated to RGB): ``arr_0`` of a
    ``.npz`` (what ADM / guided-diffusion's samplers write and its evaluator reads) or a ``.npy``. Written
    atomically; every source reader (``fid``, ``score``, ``stats``) takes it."""
    from gan_probe.checkpoint import load_generator
    from gan_probe.io import atomic_path

    out = Path(out)
    if out.suffix.lower() not in ARRAY_SUFFIXES:
        raise GanProbeError(f"out must end in .npz or .npy for an image array (got {out})", param="out")
    if out.is_dir():  # before the work, not after it
        raise GanProbeError(f"{out} is a folder; give a file path to write, or another name", param="out")
    g, config = load_generator(ckpt, device)
    arr = np.zeros((n, config.image_size, config.image_size, 3), np.uint8)
    written = 0
    for batch in generate(g, config, n, seed, batch_size, device):
        a = to_uint8(batch)
        arr[written:written + len(a)] = a  # N x H x W x 1 broadcasts to RGB
        written += len(a)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:  # a file object: numpy would append a suffix to a name
        if out.suffix.lower() == ".npz":
            np.savez(f, arr_0=arr[:written])
        else:
            np.save(f, arr[:written])
    return {"n": written, "seed": seed, "out": str(out), "shape": list(arr[:written].shape)}
