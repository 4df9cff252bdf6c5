"""Memorization statistics, figures and CLI (digits, pixel features: offline and fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from gan_probe.analysis.memorization import (MemorizationSettings, auth_pct, copy_threshold, ct_statistic,
                                             mann_whitney_z, relative_distance)
from gan_probe.analysis.memorization_run import compute_memorization, default_out_dir, run_memorization
from gan_probe.data import load_dataset
from gan_probe.errors import GanProbeError
from gan_probe.sampling import to_uint8
from cli_runner import run_cli


def _write_pngs(folder, images_u8):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images_u8):
        Image.fromarray(a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a).save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def digits():
    return {split: load_dataset(f"digits:{split}", 32, 1).images for split in ("train", "test")}


@pytest.fixture(scope="module")
def folders(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("mem")
    g = torch.Generator().manual_seed(0)
    train, test = digits["train"], digits["test"]
    copies = (train[:300] + 0.02 * torch.randn(train[:300].shape, generator=g)).clamp(-1, 1)
    blurred = [np.asarray(Image.fromarray(a[:, :, 0]).filter(ImageFilter.GaussianBlur(3)))
               for a in to_uint8(test)]
    noise = (torch.rand((100, 1, 32, 32), generator=g) * 2 - 1)
    return {
        "copies": _write_pngs(root / "copies", to_uint8(copies)),
        "heldout_gen": _write_pngs(root / "heldout_gen", to_uint8(test[:225])),
        "heldout_test": _write_pngs(root / "heldout_test", to_uint8(test[225:])),
        "blurred": _write_pngs(root / "blurred", np.stack(blurred)),
        "noise": _write_pngs(root / "noise", to_uint8(noise)),
        "small": _write_pngs(root / "small", [np.asarray(Image.fromarray(a[:, :, 0]).resize((24, 24)))
                                              for a in to_uint8(test[:60])]),
        "empty": (root / "empty").resolve(),
        "root": root,
    }


def test_training_copies_are_flagged(folders):
    s = compute_memorization(str(folders["copies"]), "digits:train", "digits:test")["summary"]
    assert s["ct"] < -5, s["ct"]
    assert s["flagged_fraction"] > 0.9
    assert s["verdict"] == "copying"
    assert s["auth_pct"] < 10
    assert s["gen_to_train"]["q50"] < s["test_to_train"]["q05"]
    assert s["image_size"] == 32 and s["channels"] == 1


def test_heldout_real_images_are_not_flagged(folders):
    s = compute_memorization(str(folders["heldout_gen"]), "digits:train", str(folders["heldout_test"]))["summary"]
    assert abs(s["ct"]) < 2.5, s["ct"]
    assert s["flagged_fraction"] < 0.05
    assert s["verdict"] == "no evidence of copying"
    assert all(c["used"] for c in s["ct_cells"])


@pytest.mark.parametrize("name", ["blurred", "noise"])
def test_underfitting_generators_give_positive_ct(folders, name):
    s = compute_memorization(str(folders[name]), "digits:train", "digits:test")["summary"]
    assert s["ct"] > 2, s["ct"]
    assert s["verdict"] == "underfitting"
    assert s["n_flagged"] == 0


def test_without_test_no_ct_and_it_says_so(folders):
    s = compute_memorization(str(folders["copies"]), "digits:train", None)["summary"]
    assert s["ct"] is None and s["n_test"] == 0
    assert any("needs held-out real images" in n for n in s["notes"])
    assert "no --test" in s["copy_threshold_rule"]
    assert s["verdict"] == "copying"  # the fixed cut still catches plain copies


def test_too_few_samples_for_ct_is_named_as_such(folders):
    # --test is given, but the generated samples fill no cell: the verdict must not ask for --test
    s = compute_memorization(str(folders["copies"]), "digits:train", "digits:test",
                             settings=MemorizationSettings(ct_min_gen=10_000))["summary"]
    assert s["ct"] is None and s["n_test"] > 0
    assert "too few generated samples per cell" in s["verdict_line"] and "needs --test" not in s["verdict_line"]


def test_ct_statistic_requires_test():
    x = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(GanProbeError, match="needs held-out real images"):
        ct_statistic(x, None, x)


def test_ct_cell_without_test_point_is_reported():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [50, 0], [0, 50]], dtype=float)
    train = np.concatenate([c + rng.normal(size=(60, 2)) for c in centres])
    test = np.concatenate([c + rng.normal(size=(30, 2)) for c in centres[:2]])
    gen = np.concatenate([c + rng.normal(size=(30, 2)) for c in centres])
    r = ct_statistic(train, test, gen, MemorizationSettings())
    assert sum(c["used"] for c in r["cells"]) == 2
    assert any("no test point" in n for n in r["notes"])
    assert r["ct"] is not None and abs(r["ct"]) < 4


def test_statistic_building_blocks():
    d = np.array([[1.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(relative_distance(d, 0.5, 3), [1.0, 0.0])
    t, rule = copy_threshold(np.arange(101, dtype=float), 0.01)
    assert t == pytest.approx(1.0) and "1% quantile" in rule
    assert copy_threshold(None, 0.01)[0] == pytest.approx(1 / 3)
    # gen clearly closer than test -> strongly negative Z; identical -> ~0
    assert mann_whitney_z(np.zeros(30), np.ones(30)) < -5
    assert abs(mann_whitney_z(np.arange(30.0), np.arange(30.0))) < 0.1
    assert auth_pct(np.array([0.5, 2.0]), np.array([0, 1]), np.array([1.0, 1.0])) == 50.0


def test_mismatched_sizes_are_resized_and_noted(folders):
    s = compute_memorization(str(folders["small"]), "digits:train", "digits:test")["summary"]
    assert s["n_gen"] == 60 and s["image_size"] == 32
    assert any("24x24" in n and "resized" in n for n in s["notes"])


def test_folder_train_sets_the_resolution(folders):
    s = compute_memorization(str(folders["heldout_gen"]), str(folders["small"]), None)["summary"]
    assert s["image_size"] == 24 and s["channels"] == 1
    assert any("GEN images of size 32x32" in n for n in s["notes"])


def test_empty_folders_are_clear_errors(folders):
    folders["empty"].mkdir(exist_ok=True)
    with pytest.raises(GanProbeError, match="no images"):
        compute_memorization(str(folders["empty"]), "digits:train", None)
    with pytest.raises(GanProbeError, match="no images"):
        compute_memorization(str(folders["copies"]), str(folders["empty"]), None)


def test_checkpoint_outputs(tiny_run, tmp_path):
    out = tmp_path / "mem"
    s = run_memorization(str(tiny_run), "digits:train", "digits:test", out=out, n=90, seed=3, device="cpu")
    assert s["n_gen"] == 90 and s["seed"] == 3 and s["gen_kind"] == "checkpoint"
    for name in ("neighbours.png", "distances.png", "per_sample.csv", "summary.json"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "summary.json").read_text())["verdict"] == s["verdict"]
    with Image.open(out / "neighbours.png") as im:
        assert im.width > 6 * 64 and im.height > 16 * 64
    assert len((out / "per_sample.csv").read_text().splitlines()) == 91
    assert default_out_dir(str(tiny_run)) == tiny_run / "analysis" / "memorization"
    # same seed -> same samples -> same numbers
    again = compute_memorization(str(tiny_run), "digits:train", "digits:test", n=90, seed=3)["summary"]
    assert again["ct"] == s["ct"] and again["gen_to_train"] == s["gen_to_train"]


def test_cli_json(folders, tmp_path, capsys):
    from gan_probe.cli import main

    out = tmp_path / "o"
    try:
        main(["memorization", str(folders["copies"]), "--train", "digits:train", "--test", "digits:test",
              "--out", str(out), "--json", "--k", "3"])
    except SystemExit as e:
        assert e.code in (0, None)
    s = json.loads(capsys.readouterr().out)
    assert s["verdict"] == "copying" and s["settings"]["k"] == 3
    assert (out / "summary.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["memorization", "{empty}", "--train", "digits:train"], "no images"),
    (["memorization", "{copies}", "--train", "digits:train", "--features", "disc"], "needs a checkpoint"),
    (["memorization", "{root}/missing", "--train", "digits:train"], "not found"),
    (["memorization", "{copies}", "--train", "nosuchset"], "unknown dataset"),
    (["memorization", "{copies}", "--train", "digits:train", "--alpha", "0"], "--alpha must be > 0"),
    (["memorization", "{copies}", "--train", "digits:train", "--copy-quantile", "1"], "strictly between"),
])
def test_cli_user_errors(folders, capsys, argv, message):
    folders["empty"].mkdir(exist_ok=True)
    argv = [a.format(**{k: str(v) for k, v in folders.items()}) for a in argv]
    code, out, err = run_cli(argv, capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
    assert out == ""
