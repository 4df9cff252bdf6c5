"""What an encoder is: a network, its preprocessing, and the provenance of its numbers.

An :class:`Encoder` maps a uint8 RGB batch (B x 3 x H x W, or a list of 3 x H x W images of any
sizes; grayscale is repeated to RGB) to float32 features (B x dim, on the CPU). It carries what a
result must name beside every number: the feature space, the weights file and its SHA-256
(and whether that matches the published file), the preprocessing and the compute precision
(:meth:`Encoder.provenance`). :meth:`Encoder.cache_identity` is the part a feature cache key needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from gan_probe.encoders.vit import fast_inference, precision_on


@dataclass
class Encoder:
    name: str  # the feature space: "dinov2", "clip"
    dim: int
    network: str  # what runs, in words
    preprocessing: str  # what happens to the uint8 image before the network, in words
    weights: Path
    weights_sha256: str
    weights_format: str  # the file format it was read from
    published_sha256: str | None  # the publisher's hash of the file, where one is known
    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]  # uint8 images -> normalized float32 B x 3 x S x S (CPU)
    device: torch.device
    l2_normalize: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def matches_published(self) -> bool | None:
        """True/False: the file is / is not the published one; None: no published hash is known."""
        return None if self.published_sha256 is None else self.published_sha256 == self.weights_sha256

    @property
    def precision(self) -> str:
        return precision_on(self.device)

    def provenance(self) -> dict[str, Any]:
        """What to print beside a number computed in this space (JSON-ready)."""
        return {"space": self.name, "dim": self.dim, "network": self.network,
                "weights": str(self.weights), "weights_sha256": self.weights_sha256,
                "weights_format": self.weights_format, "published_sha256": self.published_sha256,
                "matches_published": self.matches_published, "preprocessing": self.preprocessing,
                "precision": self.precision}

    def cache_identity(self) -> dict[str, Any]:
        """Everything the features depend on besides the images (for content-keyed caches)."""
        return {"space": self.name, "dim": self.dim, "network": self.network,
                "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing,
                "precision": self.precision, "l2_normalize": self.l2_normalize}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The network on an already preprocessed float batch -> B x dim float32 on the CPU."""
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with fast_inference(self.device):
            f = self.model(x).float().cpu()
        if self.l2_normalize:
            f = f / torch.linalg.norm(f, dim=-1, keepdim=True)
        return f

    def __call__(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        return self.embed(self.preprocess(images))
