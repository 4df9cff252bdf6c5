"""gan-probe filters: the guided-backprop rule, top-activating images, the command and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gan_probe.analysis.filters import (GuidedLeakyReLU, GuidedLeakyReLUModule, feature_responses, guided_backprop,
                                        guided_copy, layer_output, parse_features, top_activating)
from gan_probe.errors import GanProbeError
from gan_probe.models import DCGANConfig, Discriminator
from cli_runner import run_cli


def tiny_d(seed: int = 0) -> Discriminator:
    cfg = DCGANConfig(image_size=16, channels=1, nz=4, g_channels=(8, 4), d_channels=(4, 6, 8),
                      d_strides=(2, 2, 1), kernel_size=3)
    torch.manual_seed(seed)
    d = Discriminator(cfg)
    for m in d.modules():  # larger weights than N(0, 0.02), so every rectifier sees both signs
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.5)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
    return d.eval()


def test_guided_leaky_relu_rule_elementwise():
    torch.manual_seed(1)
    x = torch.randn(1000, requires_grad=True)
    g = torch.randn(1000)
    (guided,) = torch.autograd.grad(GuidedLeakyReLU.apply(x, 0.2), x, g)
    (ordinary,) = torch.autograd.grad(F.leaky_relu(x, 0.2), x, g)
    keep = (x > 0) & (g > 0)
    assert 100 < keep.sum() < 400 and (~keep).sum() > 500  # every case occurs
    assert torch.all(guided[~keep] == 0)
    assert torch.equal(guided[keep], ordinary[keep])
    # the forward pass is the ordinary LeakyReLU
    assert torch.equal(GuidedLeakyReLU.apply(x, 0.2), F.leaky_relu(x, 0.2))


def test_guided_rule_holds_at_every_rectifier_of_a_net():
    d = tiny_d()
    guided = guided_copy(d)
    rectifiers = [m for m in guided.modules() if isinstance(m, GuidedLeakyReLUModule)]
    assert len(rectifiers) == len(d.config.d_channels)
    seen: dict[int, dict] = {}
    for i, m in enumerate(rectifiers):
        m.register_forward_hook(lambda mod, inp, out, i=i: seen.setdefault(i, {}).update(x=inp[0].detach()))
        m.register_full_backward_hook(
            lambda mod, gin, gout, i=i: seen[i].update(gin=gin[0].detach(), gout=gout[0].detach()))
    x = torch.randn(3, 1, 16, 16, requires_grad=True)
    layer_output(guided, x, 2)[:, 1].flatten(1).amax(1).sum().backward()
    assert set(seen) == {0, 1, 2}
    cases = {"negative input, positive grad": 0, "positive input, negative grad": 0}
    for i, s in seen.items():
        inp, gout, gin = s["x"], s["gout"], s["gin"]
        keep = (inp > 0) & (gout > 0)
        blocked = ~keep
        assert keep.any(), f"rectifier {i}: nothing passes"
        cases["negative input, positive grad"] += int(((inp <= 0) & (gout > 0)).sum())
        cases["positive input, negative grad"] += int(((inp > 0) & (gout < 0)).sum())
        assert torch.all(gin[blocked] == 0), f"rectifier {i} passes a gradient it should block"
        # elsewhere: the ordinary LeakyReLU gradient (slope 1 for a positive input)
        z = inp.clone().requires_grad_(True)
        (ordinary,) = torch.autograd.grad(F.leaky_relu(z, 0.2), z, gout)
        assert torch.equal(gin[keep], ordinary[keep])
    assert all(n > 0 for n in cases.values()), cases  # both ways of blocking were exercised
    # the original D still has its plain LeakyReLUs and gives the ordinary gradient
    assert not any(isinstance(m, GuidedLeakyReLUModule) for m in d.modules())
    x2 = x.detach().clone().requires_grad_(True)
    layer_output(d, x2, 2)[:, 1].flatten(1).amax(1).sum().backward()
    assert not torch.allclose(x2.grad, x.grad)  # guided differs from the plain gradient


def test_guided_backprop_matches_hand_computation_on_one_layer():
    """One conv + guided LeakyReLU: the gradient of the peak is the kernel at the peak's window, where the
    pre-activation is > 0 and the incoming gradient (1 at the peak) is > 0."""
    d = tiny_d(3)
    x = torch.randn(2, 1, 16, 16)
    g = guided_backprop(d, x, layer=0, feature=2)
    conv = d.blocks[0][0]
    for n in range(2):
        xi = x[n:n + 1].clone().requires_grad_(True)
        pre = conv(xi)[0, 2]
        peak = pre.flatten().argmax()
        (ref,) = torch.autograd.grad(pre.flatten()[peak] * (pre.flatten()[peak] > 0), xi)
        assert torch.allclose(g[n:n + 1], ref, atol=1e-6)


def test_top_activating_images_maximise_the_feature_brute_force():
    d = tiny_d(5)
    torch.manual_seed(7)
    images = torch.rand(13, 1, 16, 16) * 2 - 1
    features = [0, 3, 7]
    responses = feature_responses(d, images, layer=2, features=features, batch_size=4)
    values, order = top_activating(responses, k=4)
    with torch.no_grad():
        for row, f in enumerate(features):
            brute = torch.tensor([d.features(images[i:i + 1])[2][0, f].max().item() for i in range(13)])
            assert torch.allclose(responses[:, row], brute, atol=1e-6)
            expected = torch.argsort(brute, descending=True, stable=True)[:4]
            assert order[row].tolist() == expected.tolist()
            assert torch.allclose(values[row], brute[expected], atol=1e-6)
            # nothing outside the top-k beats the k-th
            rest = torch.ones(13, dtype=torch.bool)
            rest[expected] = False
            assert brute[rest].max() <= values[row, -1] + 1e-6


def test_parse_features():
    assert parse_features("0,1,2") == [0, 1, 2]
    assert parse_features("0-3, 7") == [0, 1, 2, 3, 7]
    with pytest.raises(GanProbeError):
        parse_features("a,b")
    with pytest.raises(GanProbeError):
        parse_features(",")
    with pytest.raises(GanProbeError, match="runs backwards; write 2-5"):
        parse_features("5-2")


def test_filters_command_writes_figures_and_summary(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    code, out, err = run_cli(["filters", str(run), "--features", "0,2", "--top-k", "3", "--n-images", "40",
                              "--device", "cpu", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    folder = run / "analysis" / "filters"
    assert json.loads((folder / "summary.json").read_text()) == summary
    for name in ("guided_backprop", "top_images", "first_layer_filters"):
        assert (folder / f"{name}.png").is_file()
        assert summary["files"][name] == str(folder / f"{name}.png")
    assert summary["settings"]["features"] == [0, 2] and summary["settings"]["top_k"] == 3
    assert summary["settings"]["layer"] == 2 and summary["settings"]["n_images"] == 40
    # random | trained panels of 2 rows x 3 columns of 64 px cells (32 px upscaled x2, 2 px padding),
    # a 34 px gutter of row labels, a 16 px gap, an 18 px title band
    for name in ("guided_backprop", "top_images"):
        assert Image.open(folder / f"{name}.png").size == (34 + 2 * (3 * 66 + 2) + 16, 18 + 2 * 66 + 2)
    for which in ("trained", "random"):
        for row in summary[which]:
            r = row["response"]
            assert r == sorted(r, reverse=True) and len(r) == 3
    # the reported top images are the brute-force maximum over the searched images
    from gan_probe.analysis.filters import load_images
    from gan_probe.checkpoint import load_discriminator

    d, cfg = load_discriminator(run)
    images, _, idx = load_images("digits", cfg.image_size, cfg.channels, 40, 0)
    with torch.no_grad():
        best = d.features(images)[2][:, 2].amax(dim=(1, 2))
    assert summary["trained"][1]["dataset_index"][0] == int(idx[best.argmax()])


def _one_error_line(code: int, err: str, needle: str) -> None:
    assert code == 1
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and needle in err, err


@pytest.mark.parametrize("args, needle", [
    (["--features", "0,99"], "feature index 99 is out of range"),
    (["--features", "x"], "--features expects"),
    (["--layer", "7"], "--layer 7 is out of range"),
    (["--top-k", "0"], "--top-k must be >= 1"),
    (["--n-images", "0"], "--n-images must be >= 1"),
    (["--dataset", "nosuchdata"], "unknown dataset"),
])
def test_filters_bad_options(tiny_checkpoint, tmp_path, capsys, args, needle):
    code, _, err = run_cli(["filters", str(tiny_checkpoint), "--out", str(tmp_path / "f"), "--device", "cpu", *args],
                           capsys)
    _one_error_line(code, err, needle)


def test_top_k_above_the_images_searched_is_capped_with_a_note(tiny_checkpoint, tmp_path, capsys):
    code, out, err = run_cli(["filters", str(tiny_checkpoint), "--features", "0", "--top-k", "12", "--n-images", "8",
                              "--device", "cpu", "--json", "--out", str(tmp_path / "f")], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["settings"]["top_k"] == 8 and "more than the 8 images searched" in err
    assert summary["notes"] == ["--top-k 12 is more than the 8 images searched: showing 8"]


def test_filters_missing_and_corrupt_checkpoint(tmp_path, capsys):
    code, _, err = run_cli(["filters", str(tmp_path / "nope.pt")], capsys)
    _one_error_line(code, err, "checkpoint not found")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    code, _, err = run_cli(["filters", str(bad), "--out", str(tmp_path / "f")], capsys)
    _one_error_line(code, err, "not a torch checkpoint")
    assert not (tmp_path / "f").exists()


def test_filters_cli_subprocess_error_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "gan_probe", "filters", str(tmp_path / "missing")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_default_output_folder(tmp_path):
    from gan_probe.cli.filters import default_analysis_dir

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.pt"
    assert default_analysis_dir(run, ckpt, "filters") == run / "analysis" / "filters"
    assert default_analysis_dir(ckpt, ckpt, "filters") == run / "analysis" / "filters"
    other = tmp_path / "model.pt"
    assert default_analysis_dir(other, other, "filters") == tmp_path / "analysis" / "filters"


def test_compute_part_writes_nothing_and_its_random_d_is_the_registrys_random_disc(tiny_checkpoint, tmp_path):
    from gan_probe.analysis.filters import FilterOptions, compute_filters, filters_summary, write_filter_figures
    from gan_probe.features import get_feature_space

    opts = FilterOptions(features=(1, 3), top_k=2, n_images=12, seed=4, device="cpu")
    a = compute_filters(tiny_checkpoint, opts)
    assert not any(tmp_path.iterdir())
    assert (a.layer, a.features, a.top_k, len(a.images)) == (2, [1, 3], 2, 12)
    control = get_feature_space("random-disc", checkpoint=tiny_checkpoint, seed=4).module
    ours = a.random.state_dict()
    assert not a.random.training and ours.keys() == control.state_dict().keys()
    assert all(torch.equal(ours[k], v) for k, v in control.state_dict().items())
    assert not torch.equal(ours["blocks.0.0.weight"], a.trained.state_dict()["blocks.0.0.weight"])
    # the summary part: each feature's reported top images are the computed order
    files = write_filter_figures(a, tmp_path)
    assert sorted(files) == ["first_layer_filters", "guided_backprop", "top_images"]
    summary = filters_summary(a, tiny_checkpoint, opts, files, tmp_path / "summary.json")
    assert [row["dataset_index"] for row in summary["trained"]] == [
        [int(a.indices[j]) for j in a.results["trained"]["order"][r]] for r in range(2)]
    assert summary["settings"]["random_init_seed"] == 4 and summary["files"]["summary"].endswith("summary.json")


@pytest.mark.parametrize("settings, param, start", [
    ({"layer": 7}, "layer", "layer 7 is out of range"),
    ({"top_k": 0}, "top_k", "top_k must be >= 1"),
    ({"n_images": 0}, "n_images", "n_images must be >= 1"),
    ({"features": []}, "features", "features is empty"),
])
def test_library_errors_name_the_parameter(tiny_checkpoint, tmp_path, settings, param, start):
    from gan_probe.analysis.filters import visualize_filters

    with pytest.raises(GanProbeError) as e:
        visualize_filters(tiny_checkpoint, tmp_path / "f", device="cpu", **settings)
    assert e.value.param == param and str(e.value).startswith(start)
    assert not (tmp_path / "f").exists()
