"""The new-user trial of issue 12: a DCGAN trained by a separate plain PyTorch script
(docs/examples/dcgan_user_script.py, pytorch/examples style, not gan-probe's code), exported as
G.ts + G.ts.json and D.json, then every command a new user would run on it, and a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli_runner import run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.fixture(scope="module")
def user_gan(tmp_path_factory):
    """The user's script, run as the user would (its own process; tiny: 2 steps, narrow nets)."""
    out = tmp_path_factory.mktemp("trial") / "mygan"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH"))
                                                       if p)}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "dcgan_user_script.py"), "--out", str(out), "--steps", "2",
                           "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", "16"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def on_path(monkeypatch):
    """D.json's factory (dcgan_user_script:Discriminator) importable, here and in subprocesses."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p))


def test_the_script_exports_what_the_docs_say(user_gan):
    assert {p.name for p in user_gan.iterdir()} >= {"G.ts", "G.ts.json", "D.json", "netD.pth"}
    card = json.loads((user_gan / "G.ts.json").read_text())
    assert (card["kind"], card["z_dim"], card["image_size"], card["channels"]) == ("generator", 16, 32, 1)
    text = (Path(__file__).resolve().parent.parent / "docs" / "your-model.md").read_text()
    assert "docs/examples/dcgan_user_script.py" in text


def test_new_user_commands_and_report(user_gan, on_path, capsys):
    g, d = user_gan / "G.ts", user_gan / "D.json"
    code, _, err = run_cli(["sample", g, "--n", 16, "--out", user_gan / "S"], capsys)
    assert code == 0, err
    assert "FutureWarning" not in err and "deprecated" not in err  # torch's TorchScript notice is not ours to show
    pngs = sorted((user_gan / "S").glob("*.png"))
    assert len(pngs) == 16 and np.asarray(Image.open(pngs[0])).shape == (32, 32)
    # walk with its default feature spaces: a G alone has no D, so disc is skipped with a note, not an error
    code, _, err = run_cli(["walk", g, "--rows", 2, "--steps", 3, "--ppl-samples", 4], capsys)
    assert code == 0, err
    walk = json.loads((user_gan / "analysis" / "walk" / "summary.json").read_text())
    assert "generator alone" in walk["features_skipped"]["disc"]
    code, _, err = run_cli(["arithmetic", g, "--sheet", "--sheet-size", 8], capsys)
    assert code == 0, err
    code, out, err = run_cli(["classify", d, "--features", "disc", "--dataset", "digits", "--repeats", 1,
                              "--val-draws", 1, "--c", 0.1, "--no-baselines", "-q", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["feature_dim"] == 16 * (8 + 16 + 32) and s["accuracy"]["mean"] > 0.2  # 3 LeakyReLU layers, 4x4 each
    code, _, err = run_cli(["filters", d, "--features", "0,1", "--top-k", 2, "--n-images", 40], capsys)
    assert code == 0, err  # its default layer (-1, the last feature layer) is the last LeakyReLU, not the logit
    f = json.loads((user_gan / "analysis" / "filters" / "summary.json").read_text())
    assert f["settings"]["layer_channels"] == 32
    assert (user_gan / "analysis" / "filters" / "guided_backprop.png").is_file()

    # memorization in the user's D's feature space: --disc names it (a G alone has none)
    code, _, err = run_cli(["memorization", g, "--train", "digits:train", "--features", "disc", "--n", 20], capsys)
    assert code == 1 and "needs a discriminator" in err
    code, _, err = run_cli(["memorization", g, "--train", "digits:train", "--features", "disc", "--disc", d,
                            "--n", 20, "--out", user_gan / "mem"], capsys)
    assert code == 0, err
    m = json.loads((user_gan / "mem" / "summary.json").read_text())
    assert m["disc"] == str(d) and m["argv"][-4:-2] == ["--disc", str(d)]
    code, _, err = run_cli(["memorization", user_gan / "S", "--train", "digits:train", "--features", "disc",
                            "--disc", d, "--out", user_gan / "mem2"], capsys)  # a folder GEN: D's 32 px, 1 channel
    assert code == 0, err
    assert json.loads((user_gan / "mem2" / "summary.json").read_text())["image_size"] == 32
    code, _, err = run_cli(["memorization", g, "--train", "digits:train", "--disc", d], capsys)
    assert code == 1 and "--disc names the discriminator" in err

    code, out, err = run_cli(["report", g, "--disc", d, "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert info["out"] == str(user_gan / "report.html")  # beside the models, over their analysis/ folder
    assert info["sections"] == {"score": "not run", "memorization": "not run", "walk": "done",
                                "arithmetic": "done", "filters": "done", "classify": "done"}
    html = (user_gan / "report.html").read_text()
    assert "Training curves" not in html and "Samples over training" not in html and "<h2>Model</h2>" in html
    assert f"gan-probe memorization {g} --train DATASET" in html and "give report --dataset NAME" in html
    code, out, err = run_cli(["report", g, "--disc", d, "--dataset", "digits", "--json"], capsys)
    assert code == 0, err
    html = (user_gan / "report.html").read_text()
    assert f"gan-probe memorization {g} --train digits:train --test digits:test" in html
    assert f"gan-probe score {g} --ref digits:train" in html


def test_report_of_a_generator_alone_runs_what_it_can(user_gan, on_path, tmp_path, capsys):
    import shutil

    folder = tmp_path / "alone"
    folder.mkdir()
    for name in ("G.ts", "G.ts.json"):
        shutil.copy(user_gan / name, folder / name)
    code, out, err = run_cli(["report", folder / "G.ts", "--dataset", "digits", "--run-missing", "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert "needs the discriminator" in info["ran"]["filters"]["error"]
    assert "needs the discriminator" in info["ran"]["classify"]["error"]
    assert info["sections"]["walk"] == "done" and info["sections"]["memorization"] == "done", info["ran"]
    assert info["ran"]["memorization"]["argv"][2:6] == ["memorization", str(folder / "G.ts"), "--train",
                                                        "digits:train"]
    code, _, err = run_cli(["report", folder / "G.ts", "--gen", user_gan / "G.ts"], capsys)
    assert code == 1 and "was given as the generator too" in err
    code, _, err = run_cli(["report", folder / "G.ts", "--disc", folder / "G.ts"], capsys)
    assert code == 1 and "is not a discriminator model file" in err
