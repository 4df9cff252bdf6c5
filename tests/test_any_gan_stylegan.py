"""A StyleGAN2-ADA pickle's D without naming its layers: the default feature layers are its
DiscriminatorBlocks' outputs. The stand-in below is built as stylegan2-ada-pytorch's
training/networks.py builds D (blocks ``b{res}`` returning ``(x, img)``, ``Conv2dLayer`` whose
activation is a function, float16 blocks unless ``force_fp32``, an epilogue ``b4`` whose
minibatch-std layer needs N to be a multiple of its group), with no nn.Conv2d and no activation
module anywhere."""

from __future__ import annotations

import importlib
import json
import pickle

import torch

import gan_probe
from tests.cli_runner import run_cli

SG_NET = '''
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def bias_act(x, b=None, act="linear", gain=1.0):  # torch_utils.ops.bias_act: a function, not a module
    x = x if b is None else x + b.to(x.dtype).reshape(1, -1, 1, 1)
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2) * np.sqrt(2)
    return x * gain


class Conv2dLayer(nn.Module):
    def __init__(self, cin, cout, k, activation="linear", down=1, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.randn(cout) * 0.1) if bias else None
        self.activation, self.down, self.gain = activation, down, 1 / np.sqrt(cin * k * k)

    def forward(self, x, gain=1):
        w = (self.weight * self.gain).to(x.dtype)
        x = F.conv2d(x, w, padding=w.shape[-1] // 2)
        x = F.avg_pool2d(x, self.down) if self.down > 1 else x
        return bias_act(x, self.bias, self.activation, gain)


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels, use_fp16=False):
        super().__init__()
        self.in_channels, self.resolution, self.use_fp16 = in_channels, resolution, use_fp16
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, "lrelu")
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, "lrelu")
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, "lrelu", down=2)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, down=2, bias=False)

    def forward(self, x, img, force_fp32=False):
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        x = None if x is None else x.to(dtype)
        if self.in_channels == 0:
            x, img = self.fromrgb(img.to(dtype)), None
        y = self.skip(x, gain=np.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=np.sqrt(0.5))
        return y.add_(x), img


class MinibatchStdLayer(nn.Module):
    def __init__(self, group_size=4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        N, C, H, W = x.shape
        G = min(self.group_size, N)
        y = x.reshape(G, -1, 1, C, H, W)  # as StyleGAN's: N must be a multiple of G
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, 1, 1, 1)
        return torch.cat([x, y.repeat(G, 1, H, W)], 1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels, resolution=4):
        super().__init__()
        self.mbstd = MinibatchStdLayer()
        self.conv = Conv2dLayer(in_channels + 1, in_channels, 3, "lrelu")
        self.fc = nn.Linear(in_channels * resolution ** 2, in_channels)
        self.out = nn.Linear(in_channels, 1)

    def forward(self, x, img, cmap, force_fp32=False):
        x = self.conv(self.mbstd(x.float()))
        return self.out(bias_act(self.fc(x.flatten(1)), act="lrelu"))


class Discriminator(nn.Module):
    def __init__(self, c_dim=0, img_resolution=16, img_channels=3, num_fp16_res=1):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [16, 8]
        ch = {16: 4, 8: 6, 4: 8}
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(ch[res] if res < img_resolution else 0, ch[res],
                                                        ch[res // 2], res, img_channels,
                                                        use_fp16=res > img_resolution // 2 ** num_fp16_res))
        self.b4 = DiscriminatorEpilogue(ch[4])

    def forward(self, img, c, **block_kwargs):
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        return self.b4(x, img, None)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = 4, 0, 16, 3
        self.fc = nn.Linear(4, 3 * 16 * 16)

    def forward(self, z, c, truncation_psi=1, noise_mode="random"):
        return torch.tanh(self.fc(z * truncation_psi)).view(-1, 3, 16, 16)
'''


def _pickle(tmp_path, monkeypatch):
    (tmp_path / "sgnet.py").write_text(SG_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}")
    sgnet = importlib.import_module("sgnet")
    torch.manual_seed(0)
    D = sgnet.Discriminator()
    (tmp_path / "sg.pkl").write_bytes(pickle.dumps({"G_ema": sgnet.Generator(), "D": D}))
    return tmp_path / "sg.pkl", D


def test_a_stylegan_d_gets_its_blocks_as_feature_layers(tmp_path, monkeypatch):
    from gan_probe.features import get_feature_space
    from gan_probe.models.sources import ModelSpec

    pkl, D = _pickle(tmp_path, monkeypatch)
    with torch.no_grad():
        assert D(torch.zeros(4, 3, 16, 16), None).shape == (4, 1)  # the stand-in runs whole on 4 images...
    spec = ModelSpec(pkl, trust_pickle=True)
    d, info = gan_probe.load_discriminator(spec)
    assert info.layers == ["b16", "b8"]
    space = get_feature_space("disc", checkpoint=spec)
    x = torch.rand(3, 3, 16, 16) * 2 - 1  # ...and these 3 would fail in b4's minibatch std: D stops after b8
    with torch.no_grad():
        a, _ = D.b16(None, x, force_fp32=True)
        b, _ = D.b8(a, None, force_fp32=True)
    want = torch.cat([torch.nn.functional.adaptive_max_pool2d(m, 4).flatten(1) for m in (a, b)], 1)
    assert a.shape == (3, 6, 8, 8) and b.shape == (3, 8, 4, 4)
    assert space.dim == 16 * (6 + 8) and torch.allclose(space(x), want, atol=1e-6)  # float32, not b16's fp16
    assert "b16, b8" in space.description


def test_classify_and_memorization_run_on_a_stylegan_pickle_without_named_layers(tmp_path, monkeypatch, capsys):
    pkl, _ = _pickle(tmp_path, monkeypatch)
    code, out, err = run_cli(["classify", pkl, "--trust-pickle", "--features", "disc", "--dataset", "digits",
                              "--repeats", 1, "--val-draws", 1, "--c", 0.1, "--no-baselines", "--json", "-q",
                              "--device", "cpu"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["features"] == "disc" and s["feature_dim"] == 16 * (6 + 8) and s["accuracy"]["mean"] > 0.2
    code, _, err = run_cli(["memorization", pkl, "--trust-pickle", "--train", "digits:train", "--features", "disc",
                            "--disc", pkl, "--n", 20, "--out", tmp_path / "mem"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "mem" / "summary.json").read_text())
    assert m["disc"] == str(pkl) and "b16, b8" in m["feature_description"]
