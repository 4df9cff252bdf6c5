"""The run contract (gan_probe.runs): where an analysis writes, the summary every analysis writes,
the report reading it, and one library call giving what the CLI's --json prints."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_probe import runs
from cli_runner import run_cli


# ---------------------------------------------------------------- where
def test_run_dir_and_default_out(tmp_path):
    from gan_probe.metrics.score import default_out_dir

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.pt"
    ckpt.write_bytes(b"x")
    loose = tmp_path / "model.pt"
    loose.write_bytes(b"x")
    images = tmp_path / "images"
    images.mkdir()
    assert runs.run_dir_of(run) == runs.run_dir_of(ckpt) == run
    assert runs.run_dir_of(loose) == tmp_path
    assert runs.default_out(ckpt, "walk") == run / "analysis" / "walk"
    assert runs.find_run_dir(run) == runs.find_run_dir(ckpt) == run
    assert runs.find_run_dir(loose) is None and runs.find_run_dir(images) is None
    assert runs.find_run_dir("digits:train") is None
    assert default_out_dir(ckpt) == run / "analysis" / "score" and default_out_dir(images) is None


# ---------------------------------------------------------------- what, written and read
def _summary(**over) -> dict:
    s = runs.new_summary("demo", {"value": 1.5, "seed": 3}, argv=runs.command_line("demo", "RUN", rows=2),
                         settings={"rows": 2}, provenance={"checkpoint": "RUN/checkpoints/last.pt"}, seed=3,
                         files={})
    return {**s, **over}


def test_summary_keys_written_once_indented_and_read_back(tmp_path):
    s = _summary()
    assert list(s)[:3] == ["analysis", "command", "argv"] and s["command"] == "demo"
    assert set(s["versions"]) == {"gan_probe", "torch", "python"} and s["versions"]["torch"]
    path = runs.write_summary(tmp_path, s)
    text = path.read_text()
    assert text == json.dumps(s, indent=2) + "\n"
    assert runs.read_summary(tmp_path) == (s, "")
    assert runs.results_of(s) == {"value": 1.5}
    assert runs.command_line_of(s) == "gan-probe demo RUN --rows 2"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_a_summary_missing_a_contract_key_is_refused(tmp_path):
    for key in ("analysis", "argv", "settings", "provenance", "seed", "versions", "files"):
        s = _summary()
        del s[key]
        with pytest.raises(ValueError, match=key):
            runs.write_summary(tmp_path, s)
    with pytest.raises(ValueError, match="seed"):
        runs.write_summary(tmp_path, _summary(seed="0"))
    assert not (tmp_path / "summary.json").exists()
    with pytest.raises(ValueError, match="redefine"):
        runs.new_summary("demo", {"seed": 1}, argv=[], settings={}, provenance={}, seed=2)


def test_reader_takes_older_summaries_and_names_problems(tmp_path):
    assert runs.read_summary(tmp_path) == (None, "no summary.json")
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert runs.read_summary(tmp_path) == (None, "summary.json is not a JSON object")
    (tmp_path / "summary.json").write_text("{broken")
    assert runs.read_summary(tmp_path)[1].startswith("summary.json unreadable")
    old = {"command": "gan-probe filters RUN --top-k 5", "fid": 3.0}  # a whole-line command, no argv
    assert runs.command_line_of(old) == "gan-probe filters RUN --top-k 5"
    assert runs.command_line_of({"command": "walk"}) is None and runs.results_of(old) == {"fid": 3.0}


def test_command_line_renders_flags():
    argv = runs.command_line("x", "A B", rows=2, from_indices=[1, 2], gif=True, quiet=False, out=None,
                             out_dir=Path("o"))
    assert argv == ["gan-probe", "x", "A B", "--rows", "2", "--from-indices", "1,2", "--gif", "--out-dir", "o"]
    assert shlex.split(shlex.join(argv)) == argv


# ---------------------------------------------------------------- every analysis writes it; the report reads it
@pytest.fixture
def ref_folder(tmp_path):
    folder = tmp_path / "ref"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_every_analysis_writes_the_contract_the_report_reads(run_copy, ref_folder, inception_weights, capsys):
    from gan_probe.report import build_report

    run = str(run_copy)
    commands = {
        "walk": ["walk", run, "--rows", "1", "--steps", "3", "--features", "pixels", "--ppl-samples", "0"],
        "arithmetic": ["arithmetic", run, "--sheet", "--sheet-size", "4", "--a", "0", "--b", "1", "--c", "2"],
        "memorization": ["memorization", run, "--train", "digits:train", "--test", "digits:test", "--n", "40"],
        "classify": ["classify", run, "--features", "pixels", "--c", "0.1", "--repeats", "1", "-q"],
    }
    for name, argv in commands.items():
        code, _, err = run_cli([*argv, "--device", "cpu"], capsys)
        assert code == 0, (name, err)
        s, problem = runs.read_summary(run_copy / "analysis" / name)
        assert problem == "", name
        runs.check_summary(s)
        assert s["analysis"] == s["command"] == name
        assert s["argv"][:3] == ["gan-probe", name, run]
        assert s["provenance"]["checkpoint"] == str(run_copy / "checkpoints" / "last.pt")
        assert s["provenance"]["run_dir"] == run
        assert s["versions"]["gan_probe"] and s["versions"]["python"]
        for path in s["files"].values():
            assert Path(path).is_file(), (name, path)
    text, info = build_report(run_copy)
    for name in commands:
        assert info["sections"][name] == "done"
        s, _ = runs.read_summary(run_copy / "analysis" / name)
        assert runs.command_line_of(s).replace("'", "&#x27;") in text, name  # "Made by:" shows the argv
    assert "Provenance" in text


def test_score_writes_the_contract(run_copy, ref_folder, inception_weights, capsys):
    code, _, err = run_cli(["score", run_copy, "--ref", ref_folder, "--metrics", "fid", "--n", "10", "--dims", "64",
                            "--inception-weights", inception_weights, "--num-workers", "0", "--device", "cpu"],
                           capsys)
    assert code == 0, err
    s, problem = runs.read_summary(run_copy / "analysis" / "score")
    assert problem == "" and np.isfinite(s["fid"])  # the report reads what score writes today
    runs.check_summary(s)


# ---------------------------------------------------------------- one library call == the CLI's --json
def test_run_walk_equals_the_cli_json(tiny_checkpoint, tmp_path, capsys):
    from gan_probe.analysis.walk import run_walk

    out = tmp_path / "walk"
    code, stdout, err = run_cli(["walk", tiny_checkpoint, "--rows", "2", "--steps", "3", "--seed", "4",
                                 "--features", "pixels,disc", "--ppl-samples", "8", "--json", "--out", out], capsys)
    assert code == 0, err
    cli = json.loads(stdout)
    lib = run_walk(str(tiny_checkpoint), rows=2, steps=3, seed=4, features="pixels,disc", ppl_samples=8, out=out)
    assert lib == cli
    assert cli["argv"] == ["gan-probe", "walk", str(tiny_checkpoint), "--rows", "2", "--steps", "3",
                           "--features", "pixels,disc", "--ppl-samples", "8", "--out", str(out), "--seed", "4"]
    # the recorded command line redoes the run
    code, stdout, err = run_cli([*cli["argv"][1:], "--json"], capsys)
    assert code == 0 and json.loads(stdout) == cli


def test_run_walk_turn_vector_takes_lists_or_text(tiny_checkpoint, tmp_path):
    from gan_probe.analysis.walk import run_walk
    from gan_probe.errors import GanProbeError

    kw = dict(rows=1, steps=3, features="pixels", ppl_samples=0, out=tmp_path)
    a = run_walk(tiny_checkpoint, from_indices=[1, 2], to_indices=[3], **kw)
    b = run_walk(tiny_checkpoint, from_indices="1,2", to_indices="3", **kw)
    assert a == b and a["from_indices"] == [1, 2] and a["paper_figure"] == "Fig. 8"
    with pytest.raises(GanProbeError, match="^to_indices: index 70 is not on the sheet") as e:
        run_walk(tiny_checkpoint, from_indices=[1], to_indices=[70], **kw)
    assert e.value.param == "to_indices"
    assert e.value.for_cli().startswith("--to-indices: index 70")


def test_run_classify_equals_the_cli_json(tiny_checkpoint, tmp_path, capsys):
    from gan_probe.analysis.classify import ClassifyOptions, run_classify

    out = tmp_path / "classify"
    code, stdout, err = run_cli(["classify", tiny_checkpoint, "--features", "pixels", "--labels", "30", "--c",
                                 "0.1", "--repeats", "2", "--no-cache", "--json", "--out", out], capsys)
    assert code == 0, err
    cli = json.loads(stdout)
    opts = ClassifyOptions(labels=30, C=0.1, repeats=2, use_cache=False, device="auto", num_workers=2)
    lib = run_classify(tiny_checkpoint, "pixels", "digits", opts, out=out)
    for s in (cli, lib):
        s.pop("time_s")
    assert lib == cli and cli["labels_per_class"] == 3 and cli["paper_figure"] == "Table 1"
    assert (out / "runs" / "pixels_digits_n3.json").is_file()


def test_library_errors_name_parameters_and_the_cli_names_flags(tiny_checkpoint, capsys):
    from gan_probe.analysis.classify import ClassifyOptions, classify
    from gan_probe.errors import GanProbeError

    with pytest.raises(GanProbeError, match="^C must be > 0") as e:
        classify(tiny_checkpoint, "pixels", "digits", ClassifyOptions(C=-1.0))
    assert e.value.param == "C"
    with pytest.raises(GanProbeError, match="^repeats must be >= 1"):
        classify(tiny_checkpoint, "pixels", "digits", ClassifyOptions(repeats=0))
    code, _, err = run_cli(["classify", tiny_checkpoint, "--c", "-1"], capsys)
    assert code == 1 and "--c must be > 0" in err
