"""Encoders: pretrained networks that map images to a feature space, with their provenance.

Each encoder is one module (its weights search, its file formats -> timm key names, its
preprocessing) and one line in :data:`ENCODERS`. An :class:`Encoder` takes a uint8 RGB batch of
any size and returns float32 features; it names its space, weights file, SHA-256 and
preprocessing (:meth:`Encoder.provenance`) so results can print them beside every number.

- ``dinov2``: DINOv2 ViT-L/14, CLS token after the final norm, 1024-d, dgm-eval's preprocessing
  (:mod:`gan_probe.encoders.dinov2`).
- ``clip``: OpenAI CLIP ViT-L/14@336 image embeddings after the projection, L2-normalised, 768-d,
  the CMMD reference's preprocessing (:mod:`gan_probe.encoders.clip`).

Both run on timm's ``VisionTransformer`` (:mod:`gan_probe.encoders.vit`). Nothing is downloaded:
weights are found where the user's other tools keep them, or given by path (docs/encoders.md).
"""

from __future__ import annotations

import os
from typing import Callable

import torch

from gan_probe.encoders.base import Encoder
from gan_probe.errors import GanProbeError


def _dinov2(**kwargs) -> Encoder:
    from gan_probe.encoders.dinov2 import dinov2_encoder

    return dinov2_encoder(**kwargs)


def _clip(**kwargs) -> Encoder:
    from gan_probe.encoders.clip import clip_encoder

    return clip_encoder(**kwargs)


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "dinov2": _dinov2,
    "clip": _clip,
}


def get_encoder(name: str, *, weights: str | os.PathLike | None = None,
                device: str | torch.device = "cpu", **kwargs) -> Encoder:
    """An encoder by name (``dinov2``, ``clip``), its weights from ``weights`` or the standard caches."""
    try:
        make = ENCODERS[name]
    except KeyError:
        raise GanProbeError(f"name {name!r} is not a known encoder; choose one of {', '.join(ENCODERS)}",
                            param="name") from None
    return make(weights=weights, device=device, **kwargs)


__all__ = ["ENCODERS", "Encoder", "get_encoder"]
