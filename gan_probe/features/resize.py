"""Resize protocols: how a uint8 image becomes the Inception network's 299 x 299 input.

The same network and weights give different FIDs under different resizes (Parmar et al., CVPR
2022, "On Aliased Resizing and Surprising Subtleties in GAN Evaluation"), so every result names
its protocol. Each protocol maps uint8 RGB images (a B x 3 x H x W tensor, or a list of
3 x H x W tensors of any sizes) to the float32 B x 3 x 299 x 299 batch in [-1, 1] that
:class:`gan_probe.features.inception.InceptionExtractor` takes:

- ``pytorch-fid`` (the default): pytorch-fid's own path, the uint8 image as float in [0, 1],
  bilinear resize of the float tensor (``align_corners=False``, no antialias), ``2x - 1``
  (:func:`gan_probe.features.inception.to_inception_input`).
- ``clean``: clean-fid's ``mode="clean"``: each channel of the uint8 image resized on its own
  by PIL in float mode ``F`` (``Image.resize((299, 299), BICUBIC)``: PIL's filters widen with
  the scale factor when downsampling, so this is antialiased), clipped to [0, 255]; then the
  network's own normalisation (/255, a 299 -> 299 bilinear resize that is the identity, 2x - 1).
  clean-fid's ``compute_fid(..., mode="clean", custom_feat_extractor=pytorch-fid's network)``
  gives the same FID on the same weights (tests/test_clean_protocol.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from gan_probe.errors import GanProbeError
from gan_probe.features.inception import PREPROCESSING, to_inception_input

INPUT_SIZE = 299
DEFAULT_PROTOCOL = "pytorch-fid"


def clean_resize(image: np.ndarray | torch.Tensor, size: int = INPUT_SIZE) -> np.ndarray:
    """clean-fid's resize of one uint8 RGB image (H x W x 3 array, or 3 x H x W tensor): each channel
    as a float32 PIL image (mode ``F``), bicubic resize to ``size`` x ``size``, clipped to [0, 255].
    Returns float32 size x size x 3 in [0, 255] (not quantized)."""
    from PIL import Image

    arr = _as_hwc_uint8(image)
    out = np.empty((size, size, arr.shape[2]), dtype=np.float32)
    for c in range(arr.shape[2]):
        channel = Image.fromarray(np.ascontiguousarray(arr[:, :, c], dtype=np.float32))  # 2-D float32: mode F
        resized = channel.resize((size, size), resample=Image.Resampling.BICUBIC)
        out[:, :, c] = np.asarray(resized, dtype=np.float32).clip(0, 255)
    return out


def to_inception_input_clean(images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """The ``clean`` protocol: uint8 RGB images (B x 3 x H x W, or a list of 3 x H x W of any sizes)
    -> float32 B x 3 x 299 x 299 in [-1, 1], on the CPU (PIL resizes there), ready for the extractor.

    The float steps after the resize are pytorch-fid's, in its order (x / 255, then 2x - 1), so the
    network sees bit for bit what clean-fid's ``custom_feat_extractor`` path gives pytorch-fid's net."""
    items = list(images) if isinstance(images, (list, tuple)) or images.ndim == 4 else None
    if items is None:
        raise GanProbeError(f"images must be a B x 3 x H x W batch or a list of 3 x H x W images "
                            f"(got shape {tuple(images.shape)})", param="images")
    if not items:
        raise GanProbeError("images is empty", param="images")
    batch = np.stack([clean_resize(im) for im in items])  # B x 299 x 299 x 3, float32 in [0, 255]
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
    return 2 * (x / 255) - 1


def _as_hwc_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8:
            raise GanProbeError(f"the clean protocol resizes uint8 images (got {image.dtype})", param="images")
        if image.ndim != 3:
            raise GanProbeError(f"images must be 3 x H x W (got shape {tuple(image.shape)})", param="images")
        arr = image.detach().cpu().permute(1, 2, 0).numpy()
    else:
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise GanProbeError(f"the clean protocol resizes uint8 images (got {arr.dtype})", param="images")
        if arr.ndim != 3:
            raise GanProbeError(f"images must be H x W x 3 (got shape {arr.shape})", param="images")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise GanProbeError(f"images must be non-empty RGB (got shape {arr.shape})", param="images")
    return arr


@dataclass(frozen=True)
class ResizeProtocol:
    name: str
    description: str  # stated beside every result computed under it
    to_input: Callable[[torch.Tensor | list[torch.Tensor]], torch.Tensor]  # uint8 RGB -> B x 3 x 299 x 299 in [-1, 1]
    peer: str  # which tool gives the same numbers, and how


PROTOCOLS: dict[str, ResizeProtocol] = {
    "pytorch-fid": ResizeProtocol(
        "pytorch-fid",
        PREPROCESSING,
        to_inception_input,
        "pytorch-fid (its default); clean-fid mode='legacy_pytorch'"),
    "clean": ResizeProtocol(
        "clean",
        "uint8 RGB -> per channel PIL float ('F') bicubic 299x299, clip 0..255 -> /255 -> 2x-1 (clean-fid mode='clean')",
        to_inception_input_clean,
        "clean-fid mode='clean' with pytorch-fid's network as custom_feat_extractor (clean-fid's own "
        "default network is the StyleGAN2-ADA TorchScript port of the TF Inception, not pytorch-fid's)"),
}


def get_protocol(name: str) -> ResizeProtocol:
    """A resize protocol by name (``pytorch-fid``, ``clean``)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise GanProbeError(f"protocol must be one of {', '.join(PROTOCOLS)} (got {name!r})",
                            param="protocol") from None
