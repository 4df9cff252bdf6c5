"""The DCGAN paper's reference generator and discriminator.

Radford, Metz, Chintala (2015), section 3 guidelines:
- no pooling: strided convolutions in D, fractionally-strided (transposed) ones in G;
- BatchNorm in both nets, except G's output layer and D's input layer;
- no fully connected hidden layers;
- G: ReLU everywhere, tanh on the output; D: LeakyReLU(0.2) everywhere;
- weights ~ N(0, 0.02) (BatchNorm gains ~ N(1, 0.02), as the authors' code does).

Every layer width, stride and the kernel size live in :class:`DCGANConfig`, so the
same two classes express pytorch/examples' 64x64 model, the paper's Fig. 1 model
and the authors' SVHN and Imagenet-32 discriminators (see ``reference_models/``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from gan_probe.errors import GanProbeError

Z_DISTRIBUTIONS = ("uniform", "normal")


@dataclass(frozen=True)
class DCGANConfig:
    """Architecture of one DCGAN; saved inside every checkpoint.

    ``g_channels[i]`` is the width of G's i-th feature map, starting at 4x4 and
    doubling in size each layer; G's last transposed conv maps ``g_channels[-1]``
    to ``channels``. ``d_channels[i]`` / ``d_strides[i]`` describe D's i-th conv.
    """

    image_size: int = 64
    channels: int = 3
    nz: int = 100
    z_dist: str = "uniform"  # the paper samples z ~ U(-1, 1)
    kernel_size: int = 4
    g_channels: tuple[int, ...] = (512, 256, 128, 64)
    d_channels: tuple[int, ...] = (64, 128, 256, 512)
    d_strides: tuple[int, ...] = (2, 2, 2, 2)

    def __post_init__(self) -> None:
        # JSON round trips give lists; keep the dataclass hashable and comparable.
        for name in ("g_channels", "d_channels", "d_strides"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        if self.z_dist not in Z_DISTRIBUTIONS:
            raise GanProbeError(f"z_dist must be one of {Z_DISTRIBUTIONS}, got {self.z_dist!r}")
        if self.image_size != 4 * 2 ** len(self.g_channels):
            raise GanProbeError(
                f"image size {self.image_size} does not match a generator with "
                f"{len(self.g_channels)} upsampling layers from 4x4 (gives {4 * 2 ** len(self.g_channels)})"
            )
        if self.kernel_size < 1:
            raise GanProbeError(f"kernel_size must be >= 1, got {self.kernel_size}")
        if len(self.d_channels) != len(self.d_strides) or not self.d_channels:
            raise GanProbeError("d_channels and d_strides must be non-empty and of equal length")
        if any(s not in (1, 2) for s in self.d_strides):
            raise GanProbeError("discriminator strides must be 1 or 2")
        if self.kernel_size % 2 == 0 and 1 in self.d_strides:
            raise GanProbeError("a stride-1 conv needs an odd kernel size to keep the map size")
        if self.d_final_size < 1:
            raise GanProbeError(f"the discriminator shrinks {self.image_size}px images below 1x1")
        if min(self.nz, self.channels, *self.g_channels, *self.d_channels) < 1:
            raise GanProbeError("all widths (nz, channels, g_channels, d_channels) must be >= 1")

    @property
    def d_final_size(self) -> int:
        return self.image_size // math.prod(self.d_strides)

    @property
    def d_feature_dim(self) -> int:
        """Width of the paper's representation: every conv layer max-pooled to 4x4."""
        return 16 * sum(self.d_channels)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DCGANConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise GanProbeError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def paper_config(
    image_size: int = 64,
    channels: int = 3,
    nz: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    kernel_size: int = 4,
    z_dist: str = "uniform",
) -> DCGANConfig:
    """The standard DCGAN ladder: widths double as maps halve, 4x4 at the bottom.

    64 px with ngf = ndf = 64 is pytorch/examples' model; ngf = ndf = 128 gives
    the paper's Fig. 1 generator (4x4x1024 -> ... -> 64x64x3).
    """
    if image_size < 8 or image_size & (image_size - 1):
        raise GanProbeError(f"image size must be a power of two >= 8, got {image_size}")
    n = int(math.log2(image_size // 4))  # number of 2x stages between 4x4 and the image
    return DCGANConfig(
        image_size=image_size,
        channels=channels,
        nz=nz,
        z_dist=z_dist,
        kernel_size=kernel_size,
        g_channels=tuple(ngf * 2 ** (n - 1 - i) for i in range(n)),
        d_channels=tuple(ndf * 2**i for i in range(n)),
        d_strides=(2,) * n,
    )


def _padding(k: int) -> tuple[int, int]:
    """(padding, output_padding) making a stride-2 conv halve / a transposed conv double."""
    return (k - 1) // 2, k % 2


def weights_init(m: nn.Module) -> None:
    """N(0, 0.02) for convs and linear layers; BN gains N(1, 0.02), biases 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (nz) -> image (channels x image_size x image_size) in [-1, 1].

    With the default 64 px config:
        z: nz x 1 x 1
        -> 512 x 4 x 4      (projection: a transposed conv on the 1x1 map, i.e. a dense layer)
        -> 256 x 8 x 8
        -> 128 x 16 x 16
        ->  64 x 32 x 32
        ->   3 x 64 x 64    (no BN, tanh)
    """

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        k = config.kernel_size
        pad, out_pad = _padding(k)
        widths = config.g_channels
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.nz, widths[0], 4, 1, 0, bias=False),  # widths[0] x 4 x 4
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):  # each doubles the map size
            layers += [
                nn.ConvTranspose2d(c_in, c_out, k, 2, pad, out_pad, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
        layers += [
            nn.ConvTranspose2d(widths[-1], config.channels, k, 2, pad, out_pad, bias=False),
            nn.Tanh(),  # channels x image_size x image_size, no BN on the output
        ]
        self.main = nn.Sequential(*layers)
        self.apply(weights_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


class Discriminator(nn.Module):
    """image -> one logit (apply a sigmoid for D(x)).

    With the default 64 px config:
        3 x 64 x 64
        ->  64 x 32 x 32   (no BN on the input layer)
        -> 128 x 16 x 16
        -> 256 x 8 x 8
        -> 512 x 4 x 4
        -> flatten -> dense -> 1   (the paper: last conv layer flattened into one output)

    :meth:`features` returns every conv layer's output after its LeakyReLU: the
    paper's representation experiment pools each to 4x4.
    """

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        k = config.kernel_size
        pad, _ = _padding(k)
        blocks = []
        c_in = config.channels
        for i, (c_out, stride) in enumerate(zip(config.d_channels, config.d_strides)):
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, pad, bias=False)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            # not in-place: guided backprop and feature hooks need the pre-activation
            layers.append(nn.LeakyReLU(0.2, inplace=False))
            blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in * config.d_final_size**2, 1)
        self.apply(weights_init)

    def activations_in_place(self, on: bool = True) -> "Discriminator":
        """Let each LeakyReLU overwrite its input, as training does: the same values and, the slope
        being positive, the same gradients (bit for bit), one activation buffer less per layer
        (about 7% of a CPU step at 32 px). Off unless asked: guided backprop and feature hooks read
        the pre-activation. Returns D."""
        for m in self.modules():
            if isinstance(m, nn.LeakyReLU):
                m.inplace = on
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each conv layer's activation map, input layer first."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(1)).squeeze(1)


def sample_z(config: DCGANConfig, n: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """n latent vectors from the prior recorded in the config (drawn on the CPU, so seeds
    give the same z on every device)."""
    if config.z_dist == "uniform":
        z = torch.rand(n, config.nz, generator=generator) * 2 - 1
    else:
        z = torch.randn(n, config.nz, generator=generator)
    return z.to(device)
