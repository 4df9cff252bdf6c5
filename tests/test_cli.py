"""sample / info / checkpoint safety, and every user error ending in one line with exit code 1."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gan_probe import checkpoint as ckpt
from gan_probe.errors import GanProbeError

from cli_runner import run_cli


def cli(*args):
    return subprocess.run([sys.executable, "-m", "gan_probe", *map(str, args)], capture_output=True, text=True)


def assert_user_error(r, *words):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_sample_seeded_and_batch_size_independent(tiny_run, tmp_path):
    r = cli("sample", tiny_run, "--n", 5, "--out", tmp_path / "a", "--seed", 7, "--grid", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "a").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]  # the grid sits beside, not inside
    assert (tmp_path / "a-grid.png").is_file()
    cli("sample", tiny_run / "checkpoints" / "last.pt", "--n", 5, "--out", tmp_path / "b", "--seed", 7,
        "--batch-size", 2, "--device", "cpu")
    cli("sample", tiny_run, "--n", 5, "--out", tmp_path / "c", "--seed", 8, "--device", "cpu")
    a = [np.asarray(Image.open(f)) for f in files]
    b = [np.asarray(Image.open(tmp_path / "b" / f.name)) for f in files]
    c = [np.asarray(Image.open(tmp_path / "c" / f.name)) for f in files]
    assert a[0].shape == (32, 32)  # one-channel model -> grayscale PNG
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_info_json(tiny_run):
    r = cli("info", tiny_run, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["step"] == 6 and info["dataset"] == "digits" and info["image_size"] == 32
    assert info["epoch"] == 0 and info["d_feature_dim"] == 16 * (8 + 16 + 32)
    assert cli("info", tiny_run).returncode == 0


def test_malicious_pickle_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "x": Evil()}, bad)
    with pytest.raises(GanProbeError, match="not a safe"):
        ckpt.load_checkpoint(bad)
    assert_user_error(cli("info", bad), "not a safe gan-probe checkpoint")
    assert not marker.exists()


def test_truncated_and_foreign_checkpoints(tiny_checkpoint, tmp_path):
    data = tiny_checkpoint.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    assert_user_error(cli("sample", cut, "--out", tmp_path / "s"), "truncated")
    assert not (tmp_path / "s").exists()
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    assert_user_error(cli("info", foreign), "not a gan-probe checkpoint")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    assert_user_error(cli("info", text))


@pytest.mark.parametrize("args,words", [
    (["info", "no/such/ckpt.pt"], ["not found"]),
    (["train", "--dataset", "cifar11", "--out", "{tmp}/r"], ["unknown dataset"]),
    (["train", "--dataset", "cifar10", "--data-root", "{tmp}/none", "--out", "{tmp}/r"], ["gan-probe download cifar10"]),
    (["train", "--device", "tpu", "--out", "{tmp}/r", "--max-steps", "1"], ["unknown device"]),
    (["train", "--device", "cuda", "--out", "{tmp}/r", "--max-steps", "1"], ["CUDA"]),
    (["train", "--image-size", "48", "--out", "{tmp}/r", "--max-steps", "1"], ["power of two"]),
    (["train", "--model-config", "{tmp}/none.json", "--out", "{tmp}/r"], ["model config not found"]),
    (["train", "--model-config", "{tmp}/bad.json", "--out", "{tmp}/r"], ["not valid JSON"]),
    (["train", "--resume", "--out", "{tmp}/empty"], ["no checkpoint"]),
    (["train", "--dataset", "{tmp}/emptydir", "--out", "{tmp}/r"], ["no images"]),
    (["train", "--out", "/proc/gan-probe-run", "--max-steps", "1"], []),
    (["sample", "{tmp}/emptydir", "--out", "{tmp}/s"], ["no checkpoint"]),
    (["download", "digits"], ["cannot be downloaded"]),
    (["train", "--lr", "-1", "--out", "{tmp}/r"], ["--lr must be > 0"]),
    (["train", "--beta1", "1", "--out", "{tmp}/r"], ["--beta1 must be in [0, 1)"]),
    (["train", "--out", "{tmp}/bad.json", "--max-steps", "1"], ["is a file, not a folder"]),
])
def test_user_errors(tmp_path, args, words):
    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("a GPU is present")
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "emptydir").mkdir()
    assert_user_error(cli(*[a.replace("{tmp}", str(tmp_path)) for a in args]), *words)
    assert not (tmp_path / "r").exists()  # nothing written for a run that never started


def test_debug_shows_traceback():
    r = cli("--debug", "info", "no/such.pt")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_help_lists_examples(capsys):
    r = cli("train", "--help")
    assert r.returncode == 0 and "--resume" in r.stdout and "torchrun" in r.stdout
    for command in ("sample", "info", "download", "train", "fid", "score", "memorization", "walk", "arithmetic",
                    "filters", "classify", "report"):
        code, out, _ = run_cli([command, "--help"], capsys)
        assert code == 0 and "Examples" in out and f"gan-probe {command} " in out, command


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_sample_writes_one_image_array_that_every_source_reader_takes(tiny_run, tmp_path, capsys, suffix):
    """`sample --out samples.npz` used to make a folder of PNGs named samples.npz; it writes ADM's array now
    (arr_0, N x H x W x 3 uint8), the very images of the PNG folder."""
    from gan_probe.metrics.sources import open_source

    out = tmp_path / f"samples{suffix}"
    code, stdout, err = run_cli(["sample", tiny_run, "--n", 5, "--out", out, "--seed", 3, "--device", "cpu"], capsys)
    assert code == 0, err
    assert out.is_file() and "wrote 5 samples" in stdout and "5 x 32 x 32 x 3 uint8" in stdout
    arr = np.load(out)
    if suffix == ".npz":
        assert list(arr.keys()) == ["arr_0"]
        arr = arr["arr_0"]
    assert arr.shape == (5, 32, 32, 3) and arr.dtype == np.uint8
    assert run_cli(["sample", tiny_run, "--n", 5, "--out", tmp_path / "pngs", "--seed", 3, "--device", "cpu"],
                   capsys)[0] == 0
    pngs = np.stack([np.asarray(Image.open(tmp_path / "pngs" / f"{i:06d}.png")) for i in range(5)])
    assert np.array_equal(arr, np.repeat(pngs[..., None], 3, axis=3))  # gray PNGs, repeated to RGB
    a, b = open_source(out), open_source(tmp_path / "pngs")
    assert a.kind != "npz" and a.n == 5  # images, not statistics
    assert torch.equal(torch.cat(list(a.batches(8))), torch.cat(list(b.batches(8))))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    code, _, err = run_cli(["sample", tiny_run, "--out", tmp_path / f"g{suffix}", "--grid", "--device", "cpu"],
                           capsys)
    assert code == 1 and "--grid" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / f"g{suffix}").exists()
    (tmp_path / f"dir{suffix}").mkdir()  # refused before any sampling, in one line
    code, _, err = run_cli(["sample", tiny_run, "--out", tmp_path / f"dir{suffix}", "--device", "cpu"], capsys)
    assert code == 1 and "is a folder" in err and len(err.strip().splitlines()) == 1


def test_sample_refuses_a_folder_holding_other_files(tiny_run, tmp_path, capsys):
    out = tmp_path / "s"
    assert run_cli(["sample", tiny_run, "--n", 4, "--out", out, "--device", "cpu"], capsys)[0] == 0
    assert run_cli(["sample", tiny_run, "--n", 4, "--out", out, "--device", "cpu"], capsys)[0] == 0  # same set
    code, _, err = run_cli(["sample", tiny_run, "--n", 2, "--out", out, "--device", "cpu"], capsys)
    assert code == 1 and "already holds 2 other file(s) (e.g. 000002.png)" in err
    assert sorted(p.name for p in out.iterdir()) == [f"{i:06d}.png" for i in range(4)]  # nothing lost


@pytest.mark.parametrize("args", [["train", "--epochs", "x"], ["sample"], ["info", "--jsn", "x"], ["nosuch"],
                                  ["train", "--max-steps", "-1"], ["train", "--kernel-size", "0"],
                                  ["train", "--num-workers", "-1"]])
def test_usage_errors_are_one_line(args):
    r = cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--help" in lines[0], r.stderr


def test_option_group_options_stand_in_place_and_reach_the_command_as_one_object():
    """cli.app.option_groups: a parameter annotated with an OptionGroup becomes the group's options,
    at its place, with the group's defaults and checks; the command receives the group built."""
    import typer
    from typer.testing import CliRunner

    from gan_probe.cli.app import ModelRun, option_groups

    seen = {}
    app = typer.Typer()

    @app.command()
    @option_groups
    def cmd(first: int = 1, run: ModelRun = ModelRun(), last: bool = False) -> None:
        seen.update(first=first, run=run, last=last)

    @app.command()
    def other() -> None:  # two commands: typer then expects the command name
        pass

    runner = CliRunner()
    r = runner.invoke(app, ["cmd", "--psi", "0.5", "--class", "3", "--last"])
    assert r.exit_code == 0, r.output
    assert seen == {"first": 1, "run": ModelRun(class_index=3, psi=0.5), "last": True}
    assert seen["run"].batch_size == 256 and seen["run"].device == "auto" and not seen["run"].trust_pickle
    help_text = runner.invoke(app, ["cmd", "--help"], env={"COLUMNS": "200"}).output
    order = [help_text.index(f"--{name} ") for name in
             ("first", "batch-size", "device", "class", "psi", "trust-pickle", "last")]
    assert order == sorted(order), help_text
    assert runner.invoke(app, ["cmd", "--class", "-1"]).exit_code == 2  # the group's min=0 holds

    def clash(batch_size: int = 1, run: ModelRun = ModelRun()) -> None:
        pass

    with pytest.raises(TypeError, match="batch_size"):
        option_groups(clash)
