"""The reference DCGAN follows the paper's architecture guidelines."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_probe.errors import GanProbeError
from gan_probe.models import DCGANConfig, Discriminator, Generator, paper_config, sample_z

CONFIGS = Path(__file__).resolve().parents[1] / "reference_models" / "configs"


@pytest.mark.parametrize("size", [32, 64])
def test_shapes(size):
    cfg = paper_config(size, channels=3, nz=100, ngf=16, ndf=16)
    g, d = Generator(cfg), Discriminator(cfg)
    z = sample_z(cfg, 5)
    x = g(z)
    assert x.shape == (5, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert d(x).shape == (5,)
    feats = d.features(x)
    assert [f.shape[1] for f in feats] == list(cfg.d_channels)
    assert feats[-1].shape[-1] == 4  # D ends at 4x4 like G starts
    # G starts at 4x4 with the widest map and halves its width as the map doubles
    assert cfg.g_channels == tuple(16 * 2 ** i for i in reversed(range(len(cfg.g_channels))))


def test_pytorch_examples_64px_widths():
    cfg = paper_config(64)
    assert cfg.g_channels == (512, 256, 128, 64)  # pytorch/examples: ngf*8 at 4x4
    assert cfg.d_channels == (64, 128, 256, 512)


def _layers(module):
    return [m for m in module.modules() if not isinstance(m, (nn.Sequential, nn.ModuleList, Generator, Discriminator))]


def test_batchnorm_placement_and_activations():
    cfg = paper_config(64, ngf=8, ndf=8)
    g, d = Generator(cfg), Discriminator(cfg)
    gl = _layers(g)
    # no pooling, no hidden fully connected layers anywhere
    for m in gl + _layers(d):
        assert not isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))
    assert not any(isinstance(m, nn.Linear) for m in gl)
    assert sum(isinstance(m, nn.Linear) for m in _layers(d)) == 1  # only the final logit
    # G: every transposed conv but the last is followed by BN + ReLU; the output layer has no BN, tanh
    convs = [i for i, m in enumerate(gl) if isinstance(m, nn.ConvTranspose2d)]
    for i in convs[:-1]:
        assert isinstance(gl[i + 1], nn.BatchNorm2d) and isinstance(gl[i + 2], nn.ReLU)
    assert isinstance(gl[convs[-1] + 1], nn.Tanh) and len(gl) == convs[-1] + 2
    # D: no BN on the input layer, BN on every other conv, LeakyReLU(0.2) after each, not in place
    for i, block in enumerate(d.blocks):
        kinds = [type(m) for m in block]
        assert kinds[0] is nn.Conv2d and kinds[-1] is nn.LeakyReLU
        assert (nn.BatchNorm2d in kinds) == (i > 0)
        assert block[-1].negative_slope == 0.2 and not block[-1].inplace
    assert all(m.stride == (2, 2) for m in d.modules() if isinstance(m, nn.Conv2d))


def test_init_is_normal_002():
    torch.manual_seed(0)
    g = Generator(paper_config(64))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 5e-3


def test_z_distributions():
    g = torch.Generator().manual_seed(0)
    u = sample_z(paper_config(32, z_dist="uniform"), 2000, g)
    assert u.min() >= -1 and u.max() <= 1 and u.std() > 0.5
    n = sample_z(paper_config(32, z_dist="normal"), 2000, g)
    assert n.abs().max() > 1.5


@pytest.mark.parametrize("name,dim", [("imagenet1k_32", 28672), ("cifar10_32", 28672), ("svhn_32", 7168),
                                      ("lsun_bedrooms_64", 30720), ("faces_64", 30720)])
def test_reference_configs(name, dim):
    d = json.loads((CONFIGS / f"{name}.json").read_text())
    cfg = DCGANConfig.from_dict(d["model"])
    assert cfg.d_feature_dim == dim == d["d_feature_dim"]
    assert d["source"]
    x = Generator(cfg)(sample_z(cfg, 2))
    assert x.shape[-1] == cfg.image_size
    feats = Discriminator(cfg).features(x)
    assert sum(f.shape[1] for f in feats) * 16 == dim


def test_authors_discriminators_exactly():
    im = DCGANConfig.from_dict(json.loads((CONFIGS / "imagenet1k_32.json").read_text())["model"])
    d = Discriminator(im)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride[0]) for c in convs] == [
        (3, 128, (3, 3), 1), (128, 128, (3, 3), 2), (128, 256, (3, 3), 1),
        (256, 256, (3, 3), 2), (256, 512, (3, 3), 1), (512, 512, (3, 3), 2)]
    assert d.head.in_features == 8192 and im.nz == 256 and im.z_dist == "uniform"
    sv = DCGANConfig.from_dict(json.loads((CONFIGS / "svhn_32.json").read_text())["model"])
    convs = [m for m in Discriminator(sv).modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride[0], c.padding[0]) for c in convs] == [
        (64, (5, 5), 2, 2), (128, (5, 5), 2, 2), (256, (5, 5), 2, 2)]


@pytest.mark.parametrize("bad", [
    dict(image_size=48),
    dict(z_dist="cauchy"),
    dict(d_strides=(2, 2, 2)),
    dict(d_strides=(1, 2, 2, 2)),  # even kernel with stride 1
])
def test_bad_configs(bad):
    with pytest.raises(GanProbeError):
        DCGANConfig(**{**DCGANConfig().__dict__, **bad})


def test_config_round_trip():
    cfg = paper_config(32, channels=1, nz=16, ngf=8, ndf=8, kernel_size=5, z_dist="normal")
    assert DCGANConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(GanProbeError):
        DCGANConfig.from_dict({**cfg.to_dict(), "dropout": 0.5})
