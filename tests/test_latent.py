"""Latent walks, smoothness, offline PPL, vector arithmetic, the sample sheet (paper Figs. 4, 7, 8)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gan_probe.analysis.arithmetic import parse_indices, read_sheet_index, vector_arithmetic, write_sheet
from gan_probe.analysis.latent import (SharpRule, WalkPath, decode, interpolate, lerp, perceptual_path_length,
                                       random_walk_paths, slerp, turn_paths, walk_frames, walk_smoothness)
from gan_probe.checkpoint import load_generator
from gan_probe.errors import GanProbeError
from gan_probe.features import get_feature_space
from gan_probe.models import paper_config
from gan_probe.sampling import latents, to_uint8
from cli_runner import run_cli

NZ = 16
CONFIG = paper_config(image_size=8, channels=1, nz=NZ, ngf=4, ndf=4)  # uniform z, like the paper


class LinearG(nn.Module):
    """G(z) = W z + b reshaped to 1 x 8 x 8: arithmetic commutes with it exactly."""

    def __init__(self, scale: float = 1.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(scale * torch.randn(64, NZ, generator=g) / math.sqrt(NZ), requires_grad=False)
        self.b = nn.Parameter(0.1 * torch.randn(64, generator=g), requires_grad=False)

    def forward(self, z):
        return (z.flatten(1) @ self.w.T + self.b).reshape(-1, 1, 8, 8)


class LookupG(nn.Module):
    """A memorising G: the image of the nearest key in a fixed bank (piecewise constant in z)."""

    def __init__(self, n: int = 12, seed: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("keys", torch.rand(n, NZ, generator=g) * 2 - 1)
        self.register_buffer("bank", torch.rand(n, 1, 8, 8, generator=g) * 2 - 1)

    def forward(self, z):
        return self.bank[torch.cdist(z.flatten(1), self.keys).argmin(1)]


class SigmoidG(nn.Module):
    """Two images blended by a steep but continuous sigmoid of z.u: a fast transition, not a jump."""

    def __init__(self, steepness: float = 12.0, seed: int = 2):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("u", torch.randn(NZ, generator=g) / math.sqrt(NZ))
        self.register_buffer("ims", torch.rand(2, 1, 8, 8, generator=g) * 2 - 1)
        self.k = steepness

    def forward(self, z):
        w = torch.sigmoid(self.k * (z.flatten(1) @ self.u))[:, None, None, None]
        return (1 - w) * self.ims[0] + w * self.ims[1]


def pixels():
    return get_feature_space("pixels", image_size=8, channels=1)


# ---------------------------------------------------------------- paths
@pytest.mark.parametrize("mode", ["lerp", "slerp"])
def test_walk_first_and_last_frames_are_G_of_the_endpoints(tiny_checkpoint, mode):
    g, config = load_generator(tiny_checkpoint)
    paths = random_walk_paths(config, 5, 3, mode)
    frames = walk_frames(g, paths, 6, config.z_dist)
    assert frames.shape[:2] == (3, 6)
    samples = decode(g, latents(config, 5, 0, 4))  # the walk visits samples #0..#3 of seed 5
    for r in range(3):
        torch.testing.assert_close(frames[r, 0], samples[r], atol=1e-7, rtol=0)
        torch.testing.assert_close(frames[r, -1], samples[r + 1], atol=1e-7, rtol=0)
    # the tiny model's images are small (|x| < 0.01), but the middle frames move 1000x more than that tolerance
    assert (frames[0, 2] - samples[0]).abs().max() > 1e-4


def test_slerp_norm_profile_and_constant_angular_speed():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(100, generator=g, dtype=torch.float64), 2 * torch.randn(100, generator=g, dtype=torch.float64)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    path = slerp(z0, z1, t)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    # the norm goes linearly from |z0| to |z1| ...
    torch.testing.assert_close(path.norm(dim=1), (1 - t[:, 0]) * z0.norm() + t[:, 0] * z1.norm())
    # ... and the direction turns at a constant rate along the great circle
    cos = lambda a, b: (a @ b) / (a.norm() * b.norm())  # noqa: E731
    omega = torch.arccos(cos(z0, z1))
    angles = torch.stack([torch.arccos(cos(z0, p).clamp(-1, 1)) for p in path])
    torch.testing.assert_close(angles, t[:, 0] * omega, atol=1e-6, rtol=0)
    # equal norms stay equal; lerp sags towards the origin in between (why slerp suits normal z)
    z1_same = z1 / z1.norm() * z0.norm()
    torch.testing.assert_close(slerp(z0, z1_same, t).norm(dim=1), z0.norm().expand(11))
    assert lerp(z0, z1_same, t)[5].norm() < 0.85 * z0.norm()


def test_uniform_z_paths_stay_in_the_prior_support():
    z0, z1 = torch.full((NZ,), 0.95), -torch.full((NZ,), 0.95)
    z1[0] = 0.99
    path = interpolate(z0, z1, torch.linspace(0, 1, 9)[:, None], "slerp", "uniform")
    assert path.abs().max() <= 1.0
    normal = interpolate(z0 * 3, z1 * 3, torch.linspace(0, 1, 9)[:, None], "slerp", "normal")
    assert normal.abs().max() > 1.0  # no clamp for normal z


def test_turn_paths_go_between_averaged_exemplar_sets():
    paths = turn_paths(CONFIG, 4, [1, 2, 3], [7, 8], rows=2, mode="lerp")
    a, b = latents(CONFIG, 4, 1, 3).mean(0), latents(CONFIG, 4, 7, 2).mean(0)
    torch.testing.assert_close(paths[0].start, a)
    torch.testing.assert_close(paths[0].end, b)
    for k, p in enumerate(paths[1:]):  # the same turn vector added to samples #0, #1
        torch.testing.assert_close(p.end - p.start, b - a)
        torch.testing.assert_close((p.start + p.end) / 2, latents(CONFIG, 4, k, 1)[0])


def test_walk_path_round_trips_through_its_record():
    p = random_walk_paths(CONFIG, 2, 1, "slerp")[0]
    q = WalkPath.from_dict(json.loads(json.dumps(p.to_dict())), NZ)
    assert torch.equal(q.start, p.start) and torch.equal(q.end, p.end) and q.mode == "slerp"
    with pytest.raises(GanProbeError, match="16-d"):
        WalkPath.from_dict({**p.to_dict(), "end": [0.0, 1.0]}, NZ)


# ---------------------------------------------------------------- smoothness
def _smoothness(g, rows=6, steps=10):
    paths = random_walk_paths(CONFIG, 0, rows, "lerp")
    frames = walk_frames(g, paths, steps, "uniform")
    return walk_smoothness(g, {"pixels": pixels()}, paths, frames, "uniform")["pixels"]


def test_smoothness_flags_a_memorising_lookup_generator():
    s = _smoothness(LookupG())
    moving = [p for p in s["paths"] if p["max_jump"] not in (None, 0.0)]
    assert len(moving) >= 3
    assert all(p["sharp"] and p["zoom_ratio"] >= 0.5 for p in moving)
    assert s["sharp_paths"]


def test_smoothness_passes_smooth_generators():
    s = _smoothness(LinearG())
    assert s["sharp_paths"] == []
    for p in s["paths"]:  # a linear G moves evenly: every step 1/9 of the way, a straight line
        np.testing.assert_allclose(p["steps"], 1 / 9, rtol=1e-4)
        assert p["length_ratio"] == pytest.approx(1.0, rel=1e-4)
        assert p["zoom_ratio"] == pytest.approx(1 / 64, rel=1e-3)
    # a fast but continuous transition: big at frame resolution, spreads out under the zoom
    fast = _smoothness(SigmoidG())
    assert fast["largest_jump"] > SharpRule().min_jump
    assert fast["sharp_paths"] == []
    assert max(p["zoom_ratio"] or 0 for p in fast["paths"]) < 0.2


def test_offline_ppl_of_a_linear_generator_matches_its_closed_form():
    g = LinearG()
    res = perceptual_path_length(g, CONFIG, {"pixels": pixels()}, seed=0, n=3000, mode="lerp")["pixels"]
    # lerp: G(z_t+eps) - G(z_t) = eps W (z1 - z0); z ~ U(-1, 1) so E|W (z1 - z0)|^2 = (2/3) ||W||_F^2
    expected = 2 / 3 * float(g.w.pow(2).sum())
    assert res["value"] == pytest.approx(expected, rel=0.1)
    assert "not comparable" in res["note"]
    doubled = perceptual_path_length(LinearG(scale=2.0), CONFIG, {"pixels": pixels()}, seed=0, n=3000)["pixels"]
    assert doubled["value"] == pytest.approx(4 * res["value"], rel=1e-4)  # squared distance: quadratic in scale
    # documented limit: a piecewise-constant (memorising) G scores 0 (its rare jumps are trimmed away);
    # the sharp-transition rule, not this number, is the memorization check
    assert perceptual_path_length(LookupG(), CONFIG, {"pixels": pixels()}, seed=0, n=500)["pixels"]["value"] == 0.0


def test_auto_features_take_pixels_and_disc_and_inception_only_when_it_loads(tiny_checkpoint):
    from gan_probe.analysis.latent import load_feature_spaces

    spaces, skipped = load_feature_spaces("auto", tiny_checkpoint, "cpu")
    assert {"pixels", "disc"} <= set(spaces)
    assert set(spaces) | set(skipped) == {"pixels", "disc", "inception"} and not set(spaces) & set(skipped)
    assert all(isinstance(why, str) and why for why in skipped.values())


# ---------------------------------------------------------------- arithmetic and the sheet
def test_arithmetic_in_z_equals_arithmetic_in_images_for_a_linear_generator():
    r = vector_arithmetic(LinearG(), CONFIG, 7, {"a": [3, 7, 12], "b": [5, 9, 22], "c": [1, 4, 8]}, noise=0.25)
    torch.testing.assert_close(r.result_images[4], r.pixel_result[0], atol=1e-5, rtol=0)
    for k, c in enumerate("abc"):
        torch.testing.assert_close(r.averages[c][0], r.pixel_means[k], atol=1e-5, rtol=0)
    assert r.exemplars["a"].shape == (3, 1, 8, 8)
    # 8 neighbours within +-0.25 of the centre, none equal to it
    offsets = r.result_z - r.result_z[4]
    assert offsets.abs().max() <= 0.25 + 1e-6
    assert (offsets.abs().amax(1) > 0).sum() == 8


def test_arithmetic_is_seeded():
    idx = {"a": [1], "b": [2], "c": [3]}
    r1 = vector_arithmetic(LookupG(), CONFIG, 0, idx)
    r2 = vector_arithmetic(LookupG(), CONFIG, 0, idx)
    r3 = vector_arithmetic(LookupG(), CONFIG, 1, idx)
    assert torch.equal(r1.result_z, r2.result_z)
    assert not torch.equal(r1.result_z, r3.result_z)


def test_sheet_indices_round_trip(tiny_checkpoint, tmp_path):
    g, config = load_generator(tiny_checkpoint)
    rec = write_sheet(g, config, seed=3, n=11, out_dir=tmp_path)
    index = read_sheet_index(rec["index"])
    assert index["seed"] == 3 and index["n"] == 11 and sorted(index["tiles"]) == list(range(11))
    sheet = np.asarray(Image.open(rec["png"]).convert("L"))
    for i in (0, 4, 10):
        x0, y0, x1, y1 = index["tiles"][i]
        tile = sheet[y0:y1:index["scale"], x0:x1:index["scale"]]
        expected = to_uint8(decode(g, latents(config, 3, i, 1)))[0, :, :, 0]
        assert np.array_equal(tile, expected), f"tile {i} is not sample #{i} of seed 3"
    assert parse_indices(" 3, 7,12", "--a", 64) == [3, 7, 12]


@pytest.mark.parametrize("text, message", [
    ("", "is empty"), ("  ", "is empty"), ("3,x", "'x' is not a sample index"), ("1.5", "'1.5' is not"),
    ("3,,4", "an empty entry"), ("64", "index 64 is not on the sheet"), ("-1", "index -1 is not on the sheet"),
])
def test_bad_indices_are_refused(text, message):
    with pytest.raises(GanProbeError, match=message):
        parse_indices(text, "--a", 64)


# ---------------------------------------------------------------- CLI
def test_walk_cli_writes_grid_gif_sidecar_and_reproduces(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "walk"
    code, stdout, _ = run_cli(["walk", str(tiny_checkpoint), "--rows", "2", "--steps", "4", "--seed", "1",
                               "--gif", "--features", "pixels,disc", "--ppl-samples", "20", "--json",
                               "--out", str(out)], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["figure"] == "Fig. 4" and summary["paths"] == ["#0 -> #1", "#1 -> #2"]
    assert set(summary["smoothness"]) == {"pixels", "disc"} and set(summary["ppl"]) == {"pixels", "disc"}
    assert Image.open(out / "walk.png").size[0] > 4 * 32
    assert Image.open(out / "walk.gif").n_frames == 2 * 4 - 2
    again = tmp_path / "again"
    code, stdout, _ = run_cli(["walk", str(tiny_checkpoint), "--endpoints", str(out / "endpoints.json"),
                               "--features", "pixels,disc", "--ppl-samples", "0", "--json",
                               "--out", str(again)], capsys)
    assert code == 0
    redo = json.loads(stdout)
    assert redo["steps"] == 4 and redo["ppl"] is None
    assert redo["smoothness"]["pixels"]["paths"] == summary["smoothness"]["pixels"]["paths"]


def test_walk_cli_turn_vector(tiny_checkpoint, tmp_path, capsys):
    code, stdout, _ = run_cli(["walk", str(tiny_checkpoint), "--from-indices", "1,2,3", "--to-indices", "4,5",
                               "--rows", "1", "--steps", "3", "--features", "pixels", "--ppl-samples", "0", "--json",
                               "--out", str(tmp_path)], capsys)
    assert code == 0
    s = json.loads(stdout)
    assert s["figure"] == "Fig. 8" and s["from_indices"] == [1, 2, 3] and len(s["paths"]) == 2


def test_arithmetic_cli_sheet_then_figure(tiny_checkpoint, tmp_path, capsys):
    code, stdout, _ = run_cli(["arithmetic", str(tiny_checkpoint), "--sheet", "--seed", "2", "--sheet-size",
                               "12", "--out", str(tmp_path)], capsys)
    assert code == 0 and "sheet-seed2.png" in stdout
    code, stdout, _ = run_cli(["arithmetic", str(tiny_checkpoint), "--seed", "2", "--sheet-size", "12",
                               "--a", "0,1,2", "--b", "3,4,5", "--c", "6,7,11", "--json",
                               "--out", str(tmp_path)], capsys)
    assert code == 0
    s = json.loads(stdout)
    assert s["arithmetic"]["indices"] == {"a": [0, 1, 2], "b": [3, 4, 5], "c": [6, 7, 11]}
    assert s["figure"] == "Fig. 7" and len(s["arithmetic"]["result_z"]) == 16
    assert (tmp_path / "arithmetic-seed2.png").is_file() and (tmp_path / "sheet-seed2.png").is_file()


def test_sheet_after_arithmetic_keeps_both_records(tiny_checkpoint, tmp_path, capsys):
    base = ["arithmetic", str(tiny_checkpoint), "--sheet-size", "12", "--out", str(tmp_path)]
    assert run_cli([*base, "--seed", "3", "--a", "0,1", "--b", "2", "--c", "3"], capsys)[0] == 0
    assert run_cli([*base, "--seed", "3", "--sheet"], capsys)[0] == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["arithmetic"]["indices"] == {"a": [0, 1], "b": [2], "c": [3]} and "sheet" in s
    assert run_cli([*base, "--seed", "4", "--sheet"], capsys)[0] == 0  # another seed: a record of its own
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["seed"] == 4 and "arithmetic" not in s


def test_default_output_goes_under_the_run_dir(run_copy, capsys):
    run = run_copy
    code, _, _ = run_cli(["arithmetic", str(run), "--sheet", "--sheet-size", "4"], capsys)
    assert code == 0
    assert (run / "analysis" / "arithmetic" / "sheet-seed0.png").is_file()


@pytest.fixture
def corrupt_checkpoint(tmp_path):
    p = tmp_path / "broken.pt"
    p.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    return p


@pytest.mark.parametrize("args, message", [
    (["arithmetic", "{ckpt}", "--a", "1,x", "--b", "2", "--c", "3"], "'x' is not a sample index"),
    (["arithmetic", "{ckpt}", "--a", "70", "--b", "2", "--c", "3"], "index 70 is not on the sheet"),
    (["arithmetic", "{ckpt}", "--a", "", "--b", "2", "--c", "3"], "--a is empty"),
    (["arithmetic", "{ckpt}", "--a", "1", "--c", "3"], "--b is empty"),
    (["arithmetic", "{ckpt}"], "nothing to do"),
    (["arithmetic", "{missing}", "--sheet"], "checkpoint not found"),
    (["arithmetic", "{corrupt}", "--sheet"], "not a torch checkpoint"),
    (["walk", "{missing}"], "checkpoint not found"),
    (["walk", "{corrupt}"], "not a torch checkpoint"),
    (["walk", "{ckpt}", "--from-indices", "1,2"], "go together"),
    (["walk", "{ckpt}", "--from-indices", "1,2", "--to-indices", "3,2.5"], "'2.5' is not a sample index"),
    (["walk", "{ckpt}", "--features", "pixels,nope"], "unknown feature space 'nope'"),
    (["walk", "{ckpt}", "--mode", "cubic"], "unknown interpolation mode"),
    (["walk", "{ckpt}", "--endpoints", "{corrupt}"], "not a walk's endpoints.json"),
    (["walk", "{ckpt}", "--endpoints", "{other_nz}"], "recorded for nz=100"),
    (["walk", "{ckpt}", "--rows", "0"], "--rows must be at least 1"),
])
def test_user_errors_exit_1_with_one_line(tiny_checkpoint, corrupt_checkpoint, tmp_path, capsys, args, message):
    other_nz = tmp_path / "endpoints.json"
    other_nz.write_text(json.dumps({"format": "gan-probe/walk-endpoints", "nz": 100, "z_dist": "uniform", "steps": 4,
                                    "paths": [{"label": "x", "mode": "lerp", "start": [0.0] * 100,
                                               "end": [0.5] * 100}]}))
    fill = {"ckpt": str(tiny_checkpoint), "missing": str(tmp_path / "nope.pt"), "corrupt": str(corrupt_checkpoint),
            "other_nz": str(other_nz)}
    code, stdout, err = run_cli([*[a.format(**fill) for a in args], "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_error_from_a_real_process_is_one_line(corrupt_checkpoint):
    r = subprocess.run([sys.executable, "-m", "gan_probe", "walk", str(corrupt_checkpoint)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr and r.stdout == ""
