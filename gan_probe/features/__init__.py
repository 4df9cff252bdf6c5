"""Feature spaces by name: the registry every analysis picks from.

A :class:`FeatureSpace` maps a batch of images (float, N x C x H x W, values in
[-1, 1], the DCGAN convention) to float32 features N x dim. Each space says
the image size and channel count it wants its input at (``None``: any), and
adapts what it gets (grayscale <-> RGB, resize) itself.

- ``pixels``: the raw pixels at the requested size, flattened.
- ``disc``: the paper's representation (section 5.1): every conv layer of a
  checkpoint's discriminator, each max-pooled to a 4x4 grid, flattened and
  concatenated (16 x sum of D's widths; 28,672-d for the authors' Imagenet-32 D).
- ``random-disc``: the same architecture, randomly initialised (seeded): the
  control the paper's Fig. 5 implies.
- ``inception``: pool3 of pytorch-fid's FID Inception network
  (:mod:`gan_probe.features.inception`).
- ``dinov2``, ``clip``: the encoders of :mod:`gan_probe.encoders` (DINOv2 ViT-L/14 CLS token;
  CLIP ViT-L/14@336 image embedding, L2-normalised), their weights found as docs/encoders.md says
  (or ``weights=``); the [-1, 1] images are quantised to uint8 and given the encoder's own
  preprocessing. The description names the weights' SHA-256 and the preprocessing. Every encoder
  registered there (``register_encoder``) is a space here, without a registration of its own.

A new space is one factory returning a :class:`FeatureSpace` and one
:func:`register_feature_space` call; every analysis and command that picks a
space by name then offers it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from gan_probe.device import exact_float32
from gan_probe.encoders import ENCODER_HELP
from gan_probe.errors import GanProbeError


@dataclass
class FeatureSpace:
    name: str
    dim: int
    extract: Callable[[torch.Tensor], torch.Tensor]  # [-1, 1] images -> N x dim float32 (on the CPU)
    image_size: int | None = None
    channels: int | None = None
    description: str = ""
    module: torch.nn.Module | None = None  # the network behind disc / random-disc

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Features of a batch, computed in exact float32 (no TF32) on every device."""
        with exact_float32():
            return self.extract(adapt_images(images, self.image_size, self.channels))


def adapt_images(images: torch.Tensor, size: int | None, channels: int | None) -> torch.Tensor:
    """Convert a [-1, 1] batch to ``channels`` (1 <-> 3) and ``size`` (bilinear, no antialias)."""
    x = images.float()
    if channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif channels == 1 and x.shape[1] == 3:
        # ITU-R 601-2 luma, as PIL's convert("L")
        x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


def disc_features(d: torch.nn.Module, images: torch.Tensor, grid: int = 4) -> torch.Tensor:
    """Every conv layer of ``d`` (after its LeakyReLU) max-pooled to ``grid`` x ``grid``,
    flattened and concatenated: N x (grid^2 x sum of widths)."""
    maps = d.features(images)
    return torch.cat([F.adaptive_max_pool2d(m, grid).flatten(1) for m in maps], dim=1)


def _pixels(checkpoint=None, image_size: int | None = None, channels: int | None = None,
            device: str | torch.device = "cpu", **_) -> FeatureSpace:
    if checkpoint is not None and (image_size is None or channels is None):
        from gan_probe.models.sources import model_info

        cfg = model_info(checkpoint)
        image_size = image_size or cfg.image_size
        channels = channels or cfg.channels
    if image_size is None or channels is None:
        raise GanProbeError("pixel features need an image size and channel count (or a checkpoint to take them from)")
    return FeatureSpace("pixels", channels * image_size**2, lambda x: x.flatten(1).float().cpu(),
                        image_size, channels, f"raw pixels at {image_size}px x {channels}")


def _disc_space(name: str, d: torch.nn.Module, config, device) -> FeatureSpace:
    if not hasattr(config, "d_feature_dim"):  # any D from a model source
        return _any_disc_space(name, d, config, device)
    d = d.to(device).eval()

    @torch.inference_mode()
    def extract(x: torch.Tensor) -> torch.Tensor:
        return disc_features(d, x.to(device)).float().cpu()

    return FeatureSpace(name, config.d_feature_dim, extract, config.image_size, config.channels,
                        f"{name}: {len(config.d_channels)} conv layers max-pooled to 4x4 ({config.d_feature_dim}-d)",
                        module=d)


def _disc(checkpoint=None, device: str | torch.device = "cpu", **_) -> FeatureSpace:
    if checkpoint is None:
        raise GanProbeError("the disc feature space needs a checkpoint (its discriminator gives the features)")
    from gan_probe.checkpoint import load_discriminator

    d, config = load_discriminator(checkpoint, device)
    return _disc_space("disc", d, config, device)


def _any_disc_space(name: str, d, info, device) -> FeatureSpace:
    """disc features of a user's D (:class:`gan_probe.models.sources.DiscriminatorAdapter`):
    its chosen layers, each max-pooled to 4x4."""
    d = d.to(device).eval()

    @torch.inference_mode()
    def extract(x: torch.Tensor) -> torch.Tensor:
        return disc_features(d, x.to(device)).float().cpu()

    probe = torch.zeros(1, info.channels, info.image_size, info.image_size)
    dim = int(extract(probe).shape[1])
    return FeatureSpace(name, dim, extract, info.image_size, info.channels,
                        f"{name}: layers {', '.join(info.layers)} max-pooled to 4x4 ({dim}-d)", module=d)


def _random_disc(checkpoint=None, device: str | torch.device = "cpu", seed: int = 0, config=None,
                 **_) -> FeatureSpace:
    from gan_probe.models import Discriminator

    if config is None:
        if checkpoint is None:
            raise GanProbeError("the random-disc feature space needs a checkpoint (for the architecture) or a model "
                                 "config")
        from gan_probe.models.sources import is_foreign, random_discriminator

        if is_foreign(checkpoint):  # a user's D: its factory, re-initialised (factory cards only)
            d, info = random_discriminator(checkpoint, device, seed)
            return _disc_space("random-disc", d, info, device)
        from gan_probe.checkpoint import load_checkpoint, model_config

        config = model_config(load_checkpoint(checkpoint))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        d = Discriminator(config)
    return _disc_space("random-disc", d, config, device)


def _inception(**kwargs) -> FeatureSpace:
    from gan_probe.features.inception import inception_feature_space

    return inception_feature_space(**kwargs)


def encoder_feature_space(name: str, checkpoint=None, device: str | torch.device = "cpu", weights=None,
                          **_) -> FeatureSpace:
    """An encoder of :mod:`gan_probe.encoders` as a feature space: [-1, 1] images -> uint8 RGB (rounded as
    ``gan-probe sample`` writes PNGs) -> the encoder (its own resize and normalisation)."""
    from gan_probe.encoders import get_encoder

    enc = get_encoder(name, weights=weights, device=device)

    def extract(images: torch.Tensor) -> torch.Tensor:
        u8 = ((images.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return enc(u8)

    return FeatureSpace(name, enc.dim, extract, None, 3,
                        f"{enc.network}; weights {enc.weights} (sha256 {enc.weights_sha256}); {enc.preprocessing}",
                        module=enc.model)


FEATURE_SPACES: dict[str, Callable[..., FeatureSpace]] = {}  # name -> factory, in registration order
FEATURE_SPACE_HELP: dict[str, str] = {}  # name -> one line for --help texts


def register_feature_space(name: str, make: Callable[..., FeatureSpace], *,
                           help: str = "") -> Callable[..., FeatureSpace]:
    """Make ``make`` available as feature space ``name`` to every analysis that picks one
    (``get_feature_space(name, ...)``, the commands' ``--features`` choices).

    ``make(checkpoint=..., device=..., **kwargs)`` returns a :class:`FeatureSpace`; it must accept
    (and may ignore, via ``**_``) the keyword arguments other spaces take. ``help``: one line for
    ``--help``. A name already registered is a programming error (ValueError). Returns ``make``."""
    if name in FEATURE_SPACES:
        raise ValueError(f"feature space {name!r} is already registered")
    FEATURE_SPACES[name] = make
    FEATURE_SPACE_HELP[name] = help
    return make


def feature_space_names() -> list[str]:
    return list(FEATURE_SPACES)


register_feature_space("pixels", _pixels, help="raw pixels at the model's (or the requested) size")
register_feature_space("disc", _disc, help="the checkpoint's discriminator, every conv layer max-pooled to 4x4 "
                                           "(the paper's representation)")
register_feature_space("random-disc", _random_disc, help="the same architecture, randomly initialised (seeded)")
register_feature_space("inception", _inception, help="pool3 of pytorch-fid's FID Inception network")
for _name, _help in ENCODER_HELP.items():  # every encoder is a feature space too: registered once, there
    register_feature_space(_name, functools.partial(encoder_feature_space, _name), help=_help)


def get_feature_space(name: str, *, checkpoint: str | os.PathLike | None = None,
                      device: str | torch.device = "cpu", **kwargs) -> FeatureSpace:
    """A feature space by name: one of :data:`FEATURE_SPACES` (``pixels``, ``disc``,
    ``random-disc``, ``inception`` and any added with :func:`register_feature_space`)."""
    try:
        make = FEATURE_SPACES[name]
    except KeyError:
        raise GanProbeError(f"unknown feature space {name!r}; choose one of {', '.join(FEATURE_SPACES)}") from None
    return make(checkpoint=checkpoint, device=device, **kwargs)
