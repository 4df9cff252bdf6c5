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

SG_BIAS_ACT = '''
import numpy as np
import torch.nn.functional as F


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="cuda"):
    """As torch_utils.ops.bias_act.bias_act (its reference path): bias, activation, gain, clamp."""
    x = x if b is None else x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2 if alpha is None else alpha)
    elif act == "relu":
        x = F.relu(x)
    elif act == "tanh":
        x = x.tanh()
    x = x * (gain if gain is not None else (np.sqrt(2) if act in ("lrelu", "relu") else 1))
    return x if clamp is None or clamp < 0 else x.clamp(-clamp, clamp)
'''

SG_NET = '''
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import sg_bias_act as bias_act  # StyleGAN: from torch_utils.ops import bias_act


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
        act_gain = (np.sqrt(2) if self.activation == "lrelu" else 1) * gain
        return bias_act.bias_act(x, self.bias, act=self.activation, gain=act_gain, clamp=256 * gain)


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
        return self.out(bias_act.bias_act(self.fc(x.flatten(1)), act="lrelu"))


class Discriminator(nn.Module):
    def __init__(self, c_dim=0, img_resolution=16, img_channels=3, num_fp16_res=1):
        super().__init__()
        # as torch_utils.persistence records them on every network
        self.init_args, self.init_kwargs = (), dict(c_dim=c_dim, img_resolution=img_resolution,
                                                    img_channels=img_channels, num_fp16_res=num_fp16_res)
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
    (tmp_path / "sg_bias_act.py").write_text(SG_BIAS_ACT)
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


def test_random_disc_of_a_stylegan_pickle_is_its_d_rebuilt_from_its_constructor_arguments(tmp_path, monkeypatch):
    from gan_probe.errors import GanProbeError
    from gan_probe.models.sources import ModelSpec, random_discriminator

    pkl, D = _pickle(tmp_path, monkeypatch)
    spec = ModelSpec(pkl, trust_pickle=True)
    r0, info = random_discriminator(spec, "cpu", seed=0)
    r0_again, _ = random_discriminator(spec, "cpu", seed=0)
    r1, _ = random_discriminator(spec, "cpu", seed=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        want = type(D)(*D.init_args, **D.init_kwargs).state_dict()  # what StyleGAN's own init draws
    got = r0.net.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert all(torch.equal(got[k], v) for k, v in r0_again.net.state_dict().items())
    assert not torch.equal(got["b16.conv0.weight"], r1.net.state_dict()["b16.conv0.weight"])
    assert torch.equal(got["b16.conv0.weight"], D.state_dict()["b16.conv0.weight"])  # D too was drawn after seed 0
    trained, trained_info = gan_probe.load_discriminator(spec)
    assert info.layers == ["b16", "b8"] and info.fingerprint != trained_info.fingerprint
    del D.init_args  # a network that records no constructor arguments: one clear line
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"D": D}))
    try:
        random_discriminator(ModelSpec(tmp_path / "plain.pkl", trust_pickle=True), "cpu")
        raise AssertionError("expected GanProbeError")
    except GanProbeError as e:
        assert "records no constructor arguments" in str(e)


def test_guided_bias_act_gives_the_guided_leaky_relu_rule(tmp_path, monkeypatch):
    """The rectifiers StyleGAN applies with bias_act are guided at their output; the same gradient as
    the rule applied at their input (GuidedLeakyReLU, as for nn.LeakyReLU modules)."""
    import numpy as np

    from gan_probe.analysis.filters import GuidedLeakyReLU, guided_copy, guided_gradient
    from gan_probe.models.sources import ModelSpec

    pkl, _ = _pickle(tmp_path, monkeypatch)
    d, _ = gan_probe.load_discriminator(ModelSpec(pkl, trust_pickle=True))
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    ours = guided_gradient(guided_copy(d), x, layer=1, feature=2)
    sg_bias_act = importlib.import_module("sg_bias_act")
    original = sg_bias_act.bias_act

    def explicit(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="cuda"):
        assert act in ("lrelu", "linear") and clamp is not None
        x = x if b is None else x + b.to(x.dtype).reshape(1, -1, 1, 1)
        if act == "lrelu":
            x = GuidedLeakyReLU.apply(x, 0.2)  # the rule at the rectifier's input
        return (x * (gain if gain is not None else np.sqrt(2))).clamp(-clamp, clamp)

    monkeypatch.setattr(sg_bias_act, "bias_act", explicit)
    with torch.enable_grad():
        xr = x.clone().requires_grad_(True)
        peak = d.features(xr)[1][:, 2].flatten(1).amax(1)
        (want,) = torch.autograd.grad(peak.sum(), xr)
    monkeypatch.setattr(sg_bias_act, "bias_act", original)
    assert ours.abs().sum() > 0
    assert torch.allclose(ours, want, rtol=1e-5, atol=1e-7)
    assert sg_bias_act.bias_act is original  # the patch is undone after the guided pass


def test_filters_runs_on_a_stylegan_pickle(tmp_path, monkeypatch, capsys):
    pkl, _ = _pickle(tmp_path, monkeypatch)
    out = tmp_path / "filters"
    code, _, err = run_cli(["filters", pkl, "--trust-pickle", "--dataset", "digits", "--n-images", 40, "--top-k", 3,
                            "--features", "0-3", "--seed", 3, "--out", out, "--device", "cpu"], capsys)
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert s["settings"]["layer"] == 1 and s["settings"]["layer_channels"] == 8  # b8, the last feature layer
    assert "'b8'" in s["settings"]["response"] and "bias_act" in s["settings"]["guided_rule"]
    assert [f["feature"] for f in s["trained"]] == [0, 1, 2, 3]
    assert all(len(f["dataset_index"]) == 3 for f in s["random"])
    assert [f["dataset_index"] for f in s["trained"]] != [f["dataset_index"] for f in s["random"]]
    for name in ("guided_backprop.png", "top_images.png", "first_layer_filters.png"):
        assert (out / name).stat().st_size > 0


def test_info_on_a_stylegan_pickle_lists_g_ema_and_d(tmp_path, monkeypatch, capsys):
    pkl, D = _pickle(tmp_path, monkeypatch)
    code, _, err = run_cli(["info", pkl], capsys)
    assert code == 1 and "--trust-pickle is needed" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["info", pkl, "--trust-pickle", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    g, d = s["networks"]
    assert s["source"] == "stylegan" and (g["kind"], d["kind"]) == ("generator", "discriminator")
    assert (g["z_dim"], g["image_size"], g["channels"]) == (4, 16, 3) and d["layers"] == ["b16", "b8"]
    assert d["parameters"] == sum(p.numel() for p in D.parameters())
    (tmp_path / "d_only.pkl").write_bytes(pickle.dumps({"D": D}))  # what it holds, nothing more
    code, out, err = run_cli(["info", tmp_path / "d_only.pkl", "--trust-pickle", "--json"], capsys)
    assert code == 0, err
    assert [n["kind"] for n in json.loads(out)["networks"]] == ["discriminator"]
    (tmp_path / "none.pkl").write_bytes(pickle.dumps({"other": 1}))
    code, _, err = run_cli(["info", tmp_path / "none.pkl", "--trust-pickle"], capsys)
    assert code == 1 and "expected a network 'G_ema'" in err


def test_a_report_over_a_stylegan_pickle_uses_its_g_ema_and_its_d(tmp_path, monkeypatch):
    from gan_probe.errors import GanProbeError
    from gan_probe.report.loose import loose_model
    from gan_probe.report.sections import ANALYSES

    pkl, _ = _pickle(tmp_path, monkeypatch)
    by = {a.name: a for a in ANALYSES}
    lm = loose_model(pkl, dataset="digits", trust_pickle=True)
    assert lm.gen == lm.disc == str(pkl) and not lm.missing(by["filters"]) and not lm.missing(by["walk"])
    assert lm.argv(by["filters"]) == ["filters", str(pkl), "--dataset", "digits", "--trust-pickle"]
    assert loose_model(pkl, disc=pkl).disc == str(pkl)  # named twice: the same file
    (tmp_path / "D.json").write_text(json.dumps({"kind": "discriminator", "pickle": "sg.pkl"}))
    assert loose_model(pkl, disc=tmp_path / "D.json").disc == str(tmp_path / "D.json")  # another D given
    try:
        loose_model(tmp_path / "D.json", gen=tmp_path / "D.json")
        raise AssertionError("expected GanProbeError")
    except GanProbeError as e:
        assert "is not a generator model file" in str(e)  # a carded pickle is what its card says


def test_stats_of_a_stylegan_pickle_takes_the_model_options(tmp_path, monkeypatch, capsys, inception_weights):
    import numpy as np

    pkl, _ = _pickle(tmp_path, monkeypatch)
    common = ["--n", 8, "--batch-size", 4, "--device", "cpu", "--inception-weights", inception_weights, "--no-cache"]
    code, _, err = run_cli(["stats", pkl, "--out", tmp_path / "refused.npz", *common], capsys)
    assert code == 1 and "--trust-pickle is needed" in err and not (tmp_path / "refused.npz").exists()
    for name, extra in (("one.npz", []), ("half.npz", ["--psi", 0.5])):
        code, _, err = run_cli(["stats", pkl, "--trust-pickle", *extra, "--out", tmp_path / name, *common], capsys)
        assert code == 0, err
    one, half = (np.load(tmp_path / n) for n in ("one.npz", "half.npz"))
    assert one["mu"].shape == (2048,) and not np.allclose(one["mu"], half["mu"])  # --psi reached G_ema
    code, _, err = run_cli(["stats", "digits:test", "--trust-pickle", "--out", tmp_path / "x.npz", *common], capsys)
    assert code == 1 and "is not a model" in err
