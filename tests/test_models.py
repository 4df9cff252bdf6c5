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


# ---------------------------------------------------------------- loading G and D from a checkpoint
def _tiny_state(**drop_or_replace):
    from gan_probe.checkpoint import make_state

    cfg = paper_config(32, channels=1, nz=8, ngf=4, ndf=4)
    torch.manual_seed(0)
    state = make_state(model=cfg, train={}, G=Generator(cfg), D=Discriminator(cfg), opt_g=None, opt_d=None,
                       step=3, epoch=0)
    for key, value in drop_or_replace.items():
        if value is None:
            state.pop(key)
        else:
            state[key] = value
    return cfg, state


def test_one_loader_gives_g_and_d_in_eval_mode_with_the_saved_weights(tmp_path):
    from gan_probe.checkpoint import load_discriminator, load_generator, save_checkpoint

    cfg, state = _tiny_state()
    save_checkpoint(tmp_path / "m.pt", state)
    for load, key, cls in ((load_generator, "G", Generator), (load_discriminator, "D", Discriminator)):
        net, got_cfg = load(tmp_path / "m.pt")
        assert isinstance(net, cls) and got_cfg == cfg and not net.training
        for name, value in net.state_dict().items():
            assert torch.equal(value, state[key][name]), name


def test_a_generator_only_file_is_refused_for_the_discriminator_with_one_line(tmp_path, capsys):
    from cli_runner import run_cli
    from gan_probe.checkpoint import load_discriminator, load_generator, save_checkpoint

    _, state = _tiny_state(D=None)
    path = save_checkpoint(tmp_path / "g_only.pt", state)
    load_generator(path)  # the generator still loads
    with pytest.raises(GanProbeError, match=r"g_only.pt holds no discriminator weights \(a generator-only "
                                            r"checkpoint\); this needs the discriminator"):
        load_discriminator(path)
    code, _, err = run_cli(["filters", path, "--out", tmp_path / "f", "--device", "cpu"], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1 and "holds no discriminator weights" in err and "Traceback" not in err
    assert not (tmp_path / "f").exists()


def test_weights_that_do_not_fit_the_config_and_a_missing_config_are_user_errors(tmp_path):
    from gan_probe.checkpoint import load_discriminator, load_generator, save_checkpoint

    other = paper_config(32, channels=1, nz=8, ngf=4, ndf=8)
    _, state = _tiny_state(D=Discriminator(other).state_dict())
    save_checkpoint(tmp_path / "wide_d.pt", state)
    load_generator(tmp_path / "wide_d.pt")
    with pytest.raises(GanProbeError, match="the discriminator weights do not match its config"):
        load_discriminator(tmp_path / "wide_d.pt")
    _, state = _tiny_state(model=None)
    save_checkpoint(tmp_path / "no_config.pt", state)
    with pytest.raises(GanProbeError, match="no_config.pt holds no valid model config"):
        load_generator(tmp_path / "no_config.pt")
