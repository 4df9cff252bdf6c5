"""Probe any GAN: models that are not gan-probe's classes, as TorchScript files and factory cards."""

from __future__ import annotations

import json
import pickle
import sys
import textwrap

import numpy as np
import pytest
import torch

import gan_probe
from gan_probe.errors import GanProbeError
from tests.cli_runner import run_cli

USER_CODE = textwrap.dedent('''
    from collections import OrderedDict
    import torch
    from torch import nn

    class MLPGenerator(nn.Module):
        """Not a DCGAN: an MLP from z (z_dim x 1 x 1) to 1 x 16 x 16 images in [0, 1]."""
        def __init__(self, z_dim=8, size=16):
            super().__init__()
            self.size = size
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(z_dim, 32), nn.ReLU(), nn.Linear(32, size * size),
                                      nn.Sigmoid())
        def forward(self, z):
            return self.body(z).view(-1, 1, self.size, self.size)

    class CondGenerator(nn.Module):
        """Conditional: G(z, labels), labels int64; output in [-1, 1]."""
        def __init__(self, z_dim=6, classes=3, size=16):
            super().__init__()
            self.size = size
            self.embed = nn.Embedding(classes, z_dim)
            self.fc = nn.Linear(z_dim, 3 * size * size)
        def forward(self, z, labels):
            return torch.tanh(self.fc(z * self.embed(labels))).view(-1, 3, self.size, self.size)

    def make_d(width=4):
        return nn.Sequential(OrderedDict(
            stem=nn.Conv2d(1, width, 3, 2, 1), act_a=nn.ReLU(),
            deep=nn.Conv2d(width, 2 * width, 3, 2, 1), act_b=nn.LeakyReLU(0.1),
            logit=nn.Conv2d(2 * width, 1, 4)))

    def make_d_elu(width=4):
        return nn.Sequential(nn.Conv2d(1, width, 3, 2, 1), nn.ELU(), nn.Conv2d(width, 1, 8))

    class FunctionalD(nn.Module):
        """Activations applied as functions (as StyleGAN's bias_act): no rectifier module to swap."""
        def __init__(self, width=4):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, width, 3, 2, 1), nn.Conv2d(width, 1, 8)
        def forward(self, x):
            return self.b(torch.nn.functional.leaky_relu(self.a(x), 0.2))

    class FakeStyleGAN(nn.Module):
        """Mimics G_ema's interface: z_dim, c_dim, img_resolution, img_channels, forward(z, c, psi, noise_mode)."""
        def __init__(self):
            super().__init__()
            self.z_dim, self.c_dim, self.img_resolution, self.img_channels = 4, 2, 8, 3
            self.fc = nn.Linear(6, 3 * 64)
            self.calls = []
        def forward(self, z, c, truncation_psi=1, noise_mode="random"):
            assert noise_mode == "const"
            self.calls.append(truncation_psi)
            return torch.tanh(self.fc(torch.cat([z * truncation_psi, c], 1))).view(-1, 3, 8, 8)
''')


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """usergan.py on sys.path and PYTHONPATH; G as TorchScript + sidecar and as a card; D as a card."""
    (tmp_path / "usergan.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}")
    sys.modules.pop("usergan", None)
    import usergan

    torch.manual_seed(0)
    g = usergan.MLPGenerator()
    torch.jit.save(torch.jit.script(g), tmp_path / "G.ts")
    g_card = {"kind": "generator", "z_dim": 8, "z_shape": [8, 1, 1], "z_dist": "normal", "output_range": [0, 1],
              "image_size": 16, "channels": 1}
    (tmp_path / "G.ts.json").write_text(json.dumps(g_card))
    torch.save(g.state_dict(), tmp_path / "g.pt")
    (tmp_path / "G.json").write_text(json.dumps({**g_card, "factory": "usergan:MLPGenerator", "kwargs": {"z_dim": 8},
                                                 "state_dict": "g.pt"}))
    d = usergan.make_d()
    torch.save(d.state_dict(), tmp_path / "d.pt")
    d_card = {"kind": "discriminator", "image_size": 16, "channels": 1, "output_range": [-1, 1]}
    (tmp_path / "D.json").write_text(json.dumps({**d_card, "factory": "usergan:make_d", "kwargs": {"width": 4},
                                                 "state_dict": "d.pt"}))
    torch.jit.save(torch.jit.script(d), tmp_path / "D.ts")
    (tmp_path / "D.ts.json").write_text(json.dumps(d_card))
    c = usergan.CondGenerator()
    torch.save(c.state_dict(), tmp_path / "c.pt")
    (tmp_path / "C.json").write_text(json.dumps({"kind": "generator", "factory": "usergan:CondGenerator",
                                                 "state_dict": "c.pt", "z_dim": 6, "image_size": 16,
                                                 "channels": 3, "num_classes": 3}))
    return tmp_path, usergan


def test_torchscript_and_card_give_the_same_seeded_samples(user_models):
    from gan_probe.sampling import generate

    tmp, usergan = user_models
    g_ts, info = gan_probe.load_generator(tmp / "G.ts")
    g_card, _ = gan_probe.load_generator(tmp / "G.json")
    assert (info.nz, info.z_shape, info.image_size, info.channels) == (8, (8, 1, 1), 16, 1)
    a = torch.cat(list(generate(g_ts, info, 7, seed=3, batch_size=2)))
    b = torch.cat(list(generate(g_card, info, 5, seed=3, batch_size=5)))
    assert torch.allclose(a[:5], b, atol=1e-6)  # sample i of seed s: whatever n, batch, source
    assert a.min() >= -1 and a.max() <= 1 and a.min() < 0  # [0, 1] sigmoid output rescaled to [-1, 1]
    from gan_probe.sampling import latents
    raw = usergan.MLPGenerator()
    raw.load_state_dict(torch.load(tmp / "g.pt"))
    assert torch.allclose(a[:2], raw(latents(info, 3, 0, 2).view(2, 8, 1, 1)) * 2 - 1, atol=1e-6)


def test_sample_walk_arithmetic_on_a_torchscript_generator(user_models, capsys):
    tmp, _ = user_models
    code, _, err = run_cli(["sample", tmp / "G.ts", "--n", 6, "--out", tmp / "S", "--seed", 1, "--device", "cpu"],
                           capsys)
    assert code == 0, err
    assert len(list((tmp / "S").glob("*.png"))) == 6
    code, _, err = run_cli(["sample", tmp / "G.json", "--n", 3, "--out", tmp / "S2", "--seed", 1, "--device", "cpu"],
                           capsys)
    assert code == 0, err
    assert (tmp / "S" / "000002.png").read_bytes() == (tmp / "S2" / "000002.png").read_bytes()
    code, out, err = run_cli(["walk", tmp / "G.ts", "--rows", 2, "--steps", 3, "--features", "pixels",
                              "--ppl-samples", 4, "--device", "cpu", "--json"], capsys)
    assert code == 0, err
    assert (tmp / "analysis" / "walk" / "walk.png").is_file() and json.loads(out)["rows"] == 2
    code, _, err = run_cli(["arithmetic", tmp / "G.ts", "--sheet", "--sheet-size", 8, "--a", "0,1", "--b", "2",
                            "--c", "3", "--device", "cpu"], capsys)
    assert code == 0, err


def test_conditional_generator_class_flag(user_models, capsys):
    tmp, usergan = user_models
    g, info = gan_probe.load_generator(tmp / "C.json")
    assert info.num_classes == 3
    code, _, err = run_cli(["sample", tmp / "C.json", "--n", 4, "--class", 2, "--out", tmp / "K",
                            "--device", "cpu"], capsys)
    assert code == 0, err
    from gan_probe.models.sources import ModelSpec
    from gan_probe.sampling import latents
    g2, _ = gan_probe.load_generator(ModelSpec(tmp / "C.json", class_index=2))
    z = latents(info, 0, 0, 4)
    raw = usergan.CondGenerator()
    raw.load_state_dict(torch.load(tmp / "c.pt"))
    assert torch.allclose(g2(z), raw(z, torch.full((4,), 2)), atol=1e-6)
    code, _, err = run_cli(["walk", tmp / "C.json", "--class", 1, "--rows", 1, "--steps", 2, "--features", "pixels",
                            "--ppl-samples", 0, "--device", "cpu"], capsys)
    assert code == 0, err
    argv = json.loads((tmp / "analysis" / "walk" / "summary.json").read_text())["argv"]
    assert argv[:5] == ["gan-probe", "walk", str(tmp / "C.json"), "--class", "1"]
    code, _, err = run_cli(["arithmetic", tmp / "C.json", "--class", 1, "--sheet", "--sheet-size", 4, "--device",
                            "cpu"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["sample", tmp / "C.json", "--n", 2, "--class", 3, "--out", tmp / "K3"], capsys)
    assert code == 1 and "3 classes" in err
    code, _, err = run_cli(["sample", tmp / "G.ts", "--n", 2, "--class", 0, "--out", tmp / "K4"], capsys)
    assert code == 1 and "unconditional" in err


def test_disc_features_from_a_user_discriminator(user_models):
    from gan_probe.features import get_feature_space

    tmp, usergan = user_models
    d, info = gan_probe.load_discriminator(tmp / "D.json")
    assert info.layers == ["act_a", "act_b"]  # each conv's activation; the logit conv left out
    space = get_feature_space("disc", checkpoint=tmp / "D.json")
    assert space.dim == 16 * (4 + 8)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    raw = usergan.make_d()
    raw.load_state_dict(torch.load(tmp / "d.pt"))
    a = raw.act_a(raw.stem(x))
    b = raw.act_b(raw.deep(a))
    want = torch.cat([torch.nn.functional.adaptive_max_pool2d(m, 4).flatten(1) for m in (a, b)], 1)
    assert torch.allclose(space(x), want, atol=1e-6)
    ts = get_feature_space("disc", checkpoint=tmp / "D.ts")  # TorchScript Sequential: run layer by layer
    assert torch.allclose(ts(x), want, atol=1e-6)
    r1 = get_feature_space("random-disc", checkpoint=tmp / "D.json", seed=1)
    r2 = get_feature_space("random-disc", checkpoint=tmp / "D.json", seed=1)
    assert r1.dim == space.dim and torch.equal(r1(x), r2(x)) and not torch.allclose(r1(x), want)
    with pytest.raises(GanProbeError, match="random-disc is unavailable.*TorchScript"):
        get_feature_space("random-disc", checkpoint=tmp / "D.ts")


def test_classify_disc_on_a_user_discriminator(user_models, capsys):
    tmp, _ = user_models
    code, out, err = run_cli(["classify", tmp / "D.json", "--features", "disc", "--dataset", "digits",
                              "--repeats", "1", "--val-draws", "1", "--c", "0.1", "--json", "-q",
                              "--device", "cpu"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["features"] == "disc" and s["feature_dim"] == 192 and s["accuracy"]["mean"] > 0.3


def test_bad_cards_are_one_line(user_models):
    tmp, _ = user_models
    base = json.loads((tmp / "G.json").read_text())

    def card(**changes):
        c = {**base, **changes}
        c = {k: v for k, v in c.items() if v is not None}
        (tmp / "bad.json").write_text(json.dumps(c))
        with pytest.raises(GanProbeError) as e:
            gan_probe.load_generator(tmp / "bad.json")
        return str(e.value)

    assert "missing key 'z_dim'" in card(z_dim=None)
    assert "does not import" in card(factory="nowhere_pkg.mod:G")
    assert "(2, 3, 16, 16)" in card(channels=3) and "found (2, 1, 16, 16)" in card(channels=3)
    assert "output_range must be one of" in card(output_range=[0, 2])
    assert "z_dim 5" in card(z_dim=5, z_shape=[5, 1, 1])
    assert "image_size" in card(image_size=8)


def test_output_range_and_nan_are_checked(user_models):
    tmp, usergan = user_models
    torch.save({k: v * float("nan") for k, v in torch.load(tmp / "g.pt").items()}, tmp / "nan.pt")
    c = json.loads((tmp / "G.json").read_text())
    (tmp / "nan.json").write_text(json.dumps({**c, "state_dict": "nan.pt"}))
    with pytest.raises(GanProbeError, match="NaN"):
        gan_probe.load_generator(tmp / "nan.json")
    c2 = json.loads((tmp / "C.json").read_text())  # tanh output in [-1, 1], declared [0, 1]
    (tmp / "range.json").write_text(json.dumps({**c2, "output_range": [0, 1]}))
    with pytest.raises(GanProbeError, match=r"output_range \[0.0, 1.0\] \(found values in"):
        gan_probe.load_generator(tmp / "range.json")


MARKER_PICKLE = '''
import pathlib
class Boom:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path({marker!r}),))
'''


def test_a_pickle_is_refused_without_trust_and_never_unpickled(user_models, capsys):
    tmp, _ = user_models
    marker = tmp / "UNPICKLED"
    ns: dict = {}
    exec(MARKER_PICKLE.format(marker=str(marker)), ns)
    (tmp / "net.pkl").write_bytes(pickle.dumps({"G_ema": ns["Boom"]()}))
    (tmp / "P.json").write_text(json.dumps({"pickle": "net.pkl"}))
    for target in ("net.pkl", "P.json"):
        code, _, err = run_cli(["sample", tmp / target, "--n", 2, "--out", tmp / "s"], capsys)
        assert code == 1 and "--trust-pickle" in err and "runs code" in err
    assert not marker.exists()
    code, _, err = run_cli(["sample", tmp / "net.pkl", "--trust-pickle", "--n", 2, "--out", tmp / "s"], capsys)
    assert code == 1 and marker.exists()  # trusted: it ran (and is not a network)


def test_stylegan_pickle_with_psi_and_labels(user_models, capsys):
    tmp, usergan = user_models
    torch.manual_seed(0)
    fake = usergan.FakeStyleGAN()
    (tmp / "sg.pkl").write_bytes(pickle.dumps({"G_ema": fake, "D": None}))
    from gan_probe.models.sources import ModelSpec
    g, info = gan_probe.load_generator(ModelSpec(tmp / "sg.pkl", trust_pickle=True, psi=0.5, class_index=1))
    assert (info.nz, info.num_classes, info.image_size, info.channels) == (4, 2, 8, 3)
    z = torch.randn(3, 4)
    c = torch.tensor([[0.0, 1.0]] * 3)
    assert torch.allclose(g(z), fake(z, c, 0.5, "const"), atol=1e-6)
    assert g.net.calls[-1] == 0.5
    code, _, err = run_cli(["sample", tmp / "sg.pkl", "--trust-pickle", "--psi", "0.7", "--class", 0, "--n", 3,
                            "--out", tmp / "sg", "--device", "cpu"], capsys)
    assert code == 0, err
    assert len(list((tmp / "sg").glob("*.png"))) == 3


def test_filters_on_a_user_discriminator_and_its_rectifiers(user_models, capsys):
    from gan_probe.analysis.filters import GuidedLeakyReLUModule, guided_backprop, guided_copy

    tmp, usergan = user_models
    d, info = gan_probe.load_discriminator(tmp / "D.json")
    guided = guided_copy(d)
    assert isinstance(guided.net.act_a, GuidedLeakyReLUModule) and guided.net.act_a.negative_slope == 0.0
    assert isinstance(guided.net.act_b, GuidedLeakyReLUModule) and guided.net.act_b.negative_slope == 0.1
    # the guided rule on the user's rectifiers: grad * [input > 0] * [grad > 0] at ReLU and LeakyReLU
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    g = guided_backprop(d, x, 0, 1)
    xr = x.clone().requires_grad_(True)
    pre = d.net.stem(d.scale(xr))
    peak = torch.relu(pre)[:, 1].flatten(1).amax(1)
    (want,) = torch.autograd.grad(peak.sum(), xr)  # one rectifier, positive upstream grad: plain = guided
    assert torch.allclose(g, want, atol=1e-6) and g.abs().sum() > 0
    code, out, err = run_cli(["filters", tmp / "D.json", "--features", "0,1", "--top-k", 2, "--n-images", 20,
                              "--layer", 1, "--device", "cpu"], capsys)
    assert code == 0, err
    s = json.loads((tmp / "analysis" / "filters" / "summary.json").read_text())
    assert s["settings"]["layer_channels"] == 8
    assert (tmp / "analysis" / "filters" / "guided_backprop.png").is_file()
    (tmp / "E.json").write_text(json.dumps({"kind": "discriminator", "factory": "usergan:make_d_elu",
                                            "image_size": 16, "channels": 1}))
    code, _, err = run_cli(["filters", tmp / "E.json", "--features", "0", "--n-images", 8, "--layer", 0], capsys)
    assert code == 1 and "ELU" in err and "ReLU and LeakyReLU" in err
    (tmp / "F.json").write_text(json.dumps({"kind": "discriminator", "factory": "usergan:FunctionalD",
                                            "image_size": 16, "channels": 1, "layers": ["a"]}))
    code, _, err = run_cli(["filters", tmp / "F.json", "--features", "0", "--n-images", 8, "--layer", 0], capsys)
    assert code == 1 and "applied as functions" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["filters", tmp / "D.ts", "--features", "0", "--n-images", 8, "--layer", 0], capsys)
    assert code == 1 and "TorchScript" in err


def test_score_source_and_memorization_take_a_user_generator(user_models):
    from PIL import Image

    from gan_probe.analysis.memorization_run import run_memorization
    from gan_probe.metrics.sources import open_source
    from gan_probe.sampling import sample_to_folder

    tmp, _ = user_models
    src = open_source(tmp / "G.ts", n=5, seed=2)
    assert src.kind == "checkpoint"
    batches = torch.cat(list(src.batches(batch_size=2)))  # uint8 RGB, as gan-probe sample's PNGs
    sample_to_folder(tmp / "G.json", tmp / "P", 5, seed=2)
    png = np.asarray(Image.open(tmp / "P" / "000004.png"))
    assert np.array_equal(batches[4, 0].numpy(), png)
    assert open_source(tmp / "G.json", n=5, seed=2).fingerprint != open_source(tmp / "G.ts", n=5, seed=3).fingerprint
    s = run_memorization(str(tmp / "G.ts"), "digits:train", None, out=tmp / "mem", n=20, seed=1, device="cpu")
    assert s["n_gen"] == 20 and (tmp / "mem" / "neighbours.png").is_file()


def test_chosen_layers_and_unknown_layer_names(user_models):
    from gan_probe.features import get_feature_space

    tmp, _ = user_models
    card = json.loads((tmp / "D.json").read_text())
    (tmp / "L.json").write_text(json.dumps({**card, "layers": ["deep"]}))  # the conv before its activation
    assert get_feature_space("disc", checkpoint=tmp / "L.json").dim == 16 * 8
    (tmp / "L.json").write_text(json.dumps({**card, "layers": ["nope"]}))
    with pytest.raises(GanProbeError, match=r"layers \['nope'\] are not layers of this model \(it has: stem, "):
        gan_probe.load_discriminator(tmp / "L.json")


def test_default_layers_leave_out_a_sigmoid_logit():
    """pytorch/examples' D ends Conv2d(ndf * 8, 1, 4, 1, 0), Sigmoid(): the probability is no feature layer."""
    from torch import nn

    from gan_probe.models.adapters import default_layers

    d = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(4, 8, 4, 2, 1),
                      nn.BatchNorm2d(8), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(8, 1, 4), nn.Sigmoid())
    assert default_layers(d) == ["1", "4"]
    assert default_layers(torch.jit.script(d)) == ["1", "4"]
    hidden = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Conv2d(4, 1, 3))  # a hidden Sigmoid stays
    assert default_layers(hidden) == ["1"]


def test_info_describes_a_model_gan_probe_did_not_train(user_models, capsys):
    tmp, _ = user_models
    code, out, err = run_cli(["info", tmp / "G.ts", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    (g,) = s["networks"]
    assert s["source"] == "torchscript" and g["kind"] == "generator"
    assert (g["z_dim"], g["z_shape"], g["image_size"], g["channels"], g["output_range"]) == (8, [8, 1, 1], 16, 1, [0, 1])
    want_g = sum(p.numel() for p in gan_probe.load_generator(tmp / "G.ts")[0].net.parameters())
    assert g["parameters"] == want_g > 0 and len(g["fingerprint"]) == 64
    code, out, err = run_cli(["info", tmp / "D.json"], capsys)
    assert code == 0, err
    assert "discriminator (card)" in out and "act_a" in out and "parameters" in out
    (tmp / "bad.json").write_text(json.dumps({"kind": "discriminator", "factory": "usergan:make_d"}))
    code, _, err = run_cli(["info", tmp / "bad.json"], capsys)
    assert code == 1 and "missing key" in err and len(err.strip().splitlines()) == 1
