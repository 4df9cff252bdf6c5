"""Encoders: pretrained networks that map images to a feature space, with their provenance.

Each encoder is one module (its weights search, its file formats -> timm key names, its
preprocessing; a ViT one declares them in a :class:`~gan_probe.encoders.base.ViTEncoderFactory`) and
one :func:`register_encoder` line here, which also makes it a feature space (:mod:`gan_probe.features`).
An :class:`Encoder` takes a uint8 RGB batch of any size and returns float32 features; it names its
space, weights file, SHA-256 and preprocessing (:meth:`Encoder.provenance`) so results can print them
beside every number.

- ``dinov2``: DINOv2 ViT-L/14, CLS token after the final norm, 1024-d, dgm-eval's preprocessing
  (:mod:`gan_probe.encoders.dinov2`).
- ``clip``: OpenAI CLIP ViT-L/14@336 image embeddings after the projection, L2-normalised, 768-d,
  the CMMD reference's preprocessing (:mod:`gan_probe.encoders.clip`).

Both run on timm's ``VisionTransformer`` (:mod:`gan_probe.encoders.vit`). Nothing is downloaded:
weights are found where the user's other tools keep them, or given by path (docs/encoders.md).
"""

from __future__ import annotations

import importlib
import os
from typing import Callable

import torch

from gan_probe.encoders.base import Encoder
from gan_probe.errors import GanProbeError


ENCODERS: dict[str, Callable[..., Encoder]] = {}  # name -> factory(weights=, device=, **kw), in registration order
ENCODER_HELP: dict[str, str] = {}  # name -> one line for --help texts


def register_encoder(name: str, make: Callable[..., Encoder] | str, *, help: str = "") -> None:
    """Make ``make`` the encoder ``name``: for ``get_encoder``, ``score --features``, ``train --eval-features``,
    the Scorer, and (as a feature space of the same name) every analysis. ``make(weights=, device=, **kw)``
    returns an :class:`Encoder`; a ``"module:attribute"`` string names it, imported on first use.
    ``help``: one line for ``--help``. A name already registered is a programming error (ValueError)."""
    if name in ENCODERS:
        raise ValueError(f"encoder {name!r} is already registered")
    if isinstance(make, str):
        target = make

        def imported(**kwargs) -> Encoder:
            module, attr = target.split(":")
            return getattr(importlib.import_module(module), attr)(**kwargs)

        make = imported
    ENCODERS[name] = make
    ENCODER_HELP[name] = help


register_encoder("dinov2", "gan_probe.encoders.dinov2:dinov2_encoder",
                 help="DINOv2 ViT-L/14 CLS token, 1024-d (weights: docs/encoders.md)")
register_encoder("clip", "gan_probe.encoders.clip:clip_encoder",
                 help="OpenAI CLIP ViT-L/14@336 image embedding, L2-normalised, 768-d (weights: docs/encoders.md)")


def get_encoder(name: str, *, weights: str | os.PathLike | None = None,
                device: str | torch.device = "cpu", **kwargs) -> Encoder:
    """An encoder by name (``dinov2``, ``clip``), its weights from ``weights`` or the standard caches."""
    try:
        make = ENCODERS[name]
    except KeyError:
        raise GanProbeError(f"name {name!r} is not a known encoder; choose one of {', '.join(ENCODERS)}",
                            param="name") from None
    return make(weights=weights, device=device, **kwargs)


__all__ = ["ENCODERS", "ENCODER_HELP", "Encoder", "get_encoder", "register_encoder"]
