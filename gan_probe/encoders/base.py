"""What an encoder is: a network, its preprocessing, and the provenance of its numbers.

An :class:`Encoder` maps a uint8 RGB batch (B x 3 x H x W, or a list of 3 x H x W images of any
sizes; grayscale is repeated to RGB) to float32 features (B x dim, on the CPU). It carries what a
result must name beside every number: the feature space, the weights file and its SHA-256
(and whether that matches the published file), the preprocessing and the compute precision
(:meth:`Encoder.provenance`). :meth:`Encoder.cache_identity` is the part a feature cache key needs.

A :class:`ViTEncoderFactory` is what a ViT encoder module declares (its architecture, weights search,
file formats, preprocessing); calling it finds, reads, converts and loads the weights into an
:class:`Encoder`, the same way for every such encoder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from gan_probe.encoders.vit import ViTSpec, fast_inference, load_vit_file, precision_on

if TYPE_CHECKING:
    from gan_probe.encoders.weights import WeightsFile


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


@dataclass(frozen=True)
class ViTEncoderFactory:
    """One encoder on :mod:`gan_probe.encoders.vit`: what its module declares. Calling it
    (``weights=``, ``device=``, ``spec=``) returns the :class:`Encoder`; ``spec`` swaps the
    architecture (tiny test models), the rest stays the encoder's own."""

    name: str  # the feature space: "dinov2"
    what: str  # names its weights in messages: "DINOv2" ("not a readable DINOv2 weights file")
    spec: ViTSpec  # the published architecture
    network: str  # what runs at ``spec``, in words (another spec: "<what>-style <spec.describe()>")
    preprocessing: str  # in words, at ``spec.img_size`` ("224x224" in it follows another spec's size)
    preprocess: Callable[[Any, int], torch.Tensor]  # (uint8 images, size) -> normalized B x 3 x size x size
    find_weights: Callable[[str | os.PathLike | None], WeightsFile]  # the file: given, else searched for
    weights_format: Callable[[dict[str, torch.Tensor]], str]  # a state dict's format, or GanProbeError
    to_timm: Callable[[dict[str, torch.Tensor], ViTSpec], dict[str, torch.Tensor]]  # -> timm's keys
    l2_normalize: bool = False

    def load_network(self, path: str | os.PathLike, spec: ViTSpec | None = None) -> tuple[torch.nn.Module, str]:
        """(timm network with the file's weights, the file's format)."""
        return load_vit_file(path, spec or self.spec, self.what, self.weights_format, self.to_timm)

    def __call__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 spec: ViTSpec | None = None, **_) -> Encoder:
        from gan_probe.encoders.weights import weights_notes, weights_sha256

        spec = spec or self.spec
        found = self.find_weights(weights)
        model, fmt = self.load_network(found.path, spec)
        device = torch.device(device)
        sha = weights_sha256(found.path)
        size, own = spec.img_size, self.spec.img_size
        preprocess = self.preprocess
        network = self.network if spec == self.spec else f"{self.what}-style {spec.describe()}"
        enc = Encoder(self.name, spec.out_dim, network,
                      self.preprocessing.replace(f"{own}x{own}", f"{size}x{size}"),
                      Path(found.path), sha, fmt, found.published_sha256, model.to(device),
                      lambda images: preprocess(images, size), device, l2_normalize=self.l2_normalize)
        enc.notes.extend(weights_notes(found.path, sha, found.published_sha256))
        return enc
