"""gan-probe report: every section, embedded images, no network, missing analyses, bad inputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gan_probe.report import build_report, write_report
from gan_probe.report import build as report_build
from gan_probe.report.sections import ANALYSES, Analysis, run_datasets
from gan_probe.report.svg import line_plot, nice_ticks
from cli_runner import run_cli

SECTION_IDS = ("training", "score", "memorization", "walk", "arithmetic", "filters", "classify")


def external_refs(text: str) -> list[str]:
    """src/href/url() values that would reach outside the file."""
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text) + re.findall(r"url\(([^)]*)\)", text)
    return [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]


@pytest.fixture
def run(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run (analysis folders are added per test)."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def add_analysis(run: Path, name: str, summary: dict | None, images: dict[str, tuple[int, int]]) -> Path:
    folder = run / "analysis" / name
    folder.mkdir(parents=True)
    for fname, (w, h) in images.items():
        im = Image.new("RGB", (w, h), (40, 120, 200))
        if fname.endswith(".gif"):
            frames = [Image.new("P", (w, h), i) for i in range(3)]
            frames[0].save(folder / fname, save_all=True, append_images=frames[1:], duration=100, loop=0)
        else:
            im.save(folder / fname)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_report_with_missing_analyses_lists_them_with_commands(run):
    text, info = build_report(run)
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in text
    assert all(info["sections"][a.name] == "not run" for a in ANALYSES)
    assert f"gan-probe filters {run}" in text and f"gan-probe memorization {run} --train digits:train" in text
    assert text.count("not run") >= len(ANALYSES)
    assert "pt_inception-2015-12-05-6726825d.pth" in text  # how to get the Inception weights
    # the training section: real images + the final-step grid, and the two SVG plots
    assert text.count("data:image/png;base64,") == 2
    assert text.count("<svg") == 2 and "Losses (BCE)" in text and "D(x)" in text
    # the train command, with the options that differ from the defaults
    assert "gan-probe train --dataset digits --max-steps 6 --batch-size 32 --device cpu" in text
    assert "--log-every 2" in text and "--nz 16 --ngf 8 --ndf 8" in text and "--epochs" not in text
    assert external_refs(text) == [] and "<script" not in text.lower() and "<link" not in text.lower()


def test_report_embeds_every_analysis_image_and_table(run):
    add_analysis(run, "walk", {"command": "gan-probe walk RUN --gif --seed 3",
                               "settings": {"rows": 4, "steps": 8, "seed": 3},
                               "path_jumps": [{"path": 0, "max_jump": 0.25}, {"path": 1, "max_jump": 0.5}]},
                 {"walk.png": (40, 20), "walk.gif": (16, 16)})
    add_analysis(run, "classify", {"command": "gan-probe classify RUN --features disc",
                                   "test_accuracy": 0.9123, "settings": {"C": 0.01}}, {})
    add_analysis(run, "memorization", None, {"nn.png": (30, 30)})  # no summary.json: still shown
    (run / "analysis" / "memorization" / "deep").mkdir()
    Image.new("RGB", (10, 10)).save(run / "analysis" / "memorization" / "deep" / "more.png")
    add_analysis(run, "custom-thing", {"value": 1.5}, {"c.png": (12, 12)})  # an analysis the report does not know
    out = run / "r.html"
    info = write_report(run, out)
    text = out.read_text()
    assert info["sections"]["walk"] == "done" and info["sections"]["classify"] == "done"
    assert info["sections"]["custom-thing"] == "done" and info["sections"]["filters"] == "not run"
    assert "gan-probe walk RUN --gif --seed 3" in text  # the command recorded in summary.json
    assert "data:image/gif;base64," in text
    # 2 training images + walk.png + walk.gif + nn.png + deep/more.png + c.png
    assert len(re.findall(r'src="data:image/', text)) == 7
    assert "82.8%" in text and "22.48%" in text and "test_accuracy" in text and "0.9123" in text
    assert "<th>max_jump</th>" in text  # a list of records becomes a table
    assert "no summary.json" in text
    assert external_refs(text) == []


def test_report_survives_broken_parts(run):
    add_analysis(run, "walk", None, {"broken.png": (4, 4)})
    (run / "analysis" / "walk" / "summary.json").write_text("{not json")
    (run / "analysis" / "walk" / "broken.png").write_bytes(b"not a png")
    with (run / "log.jsonl").open("a") as f:
        f.write('{"step": 99, "loss_d": 1.0\n')  # a run killed mid-line
    shutil.rmtree(run / "samples")
    text, info = build_report(run)
    assert info["sections"]["walk"] == "done"
    assert "summary.json unreadable" in text and "cannot read image broken.png" in text
    assert "1 unreadable line(s) in log.jsonl" in text and "no sample grids" in text


def test_run_missing_tolerates_failing_and_unknown_commands(run, monkeypatch):
    fake = (
        Analysis("nosuchcommand", "Unknown", "-", "-", lambda r, ds: ["nosuchcommand", r]),
        Analysis("info", "A command that writes nothing", "-", "-", lambda r, ds: ["info", r, "--json"]),
    )
    monkeypatch.setattr(report_build, "ANALYSES", fake)
    text, info = build_report(run, run_missing=True)
    assert "No such command" in info["ran"]["nosuchcommand"]["error"]
    assert info["ran"]["info"]["error"] == "finished but wrote nothing to analysis/info/"
    assert info["sections"] == {"nosuchcommand": "not run", "info": "not run"}
    assert "--run-missing: " in text and "No such command" in text
    assert "not run (finished but wrote nothing to analysis/info/)" in text  # in the summary at the top


def test_run_missing_runs_the_filters_command(run, monkeypatch):
    real = next(a for a in ANALYSES if a.name == "filters")
    small = Analysis("filters", real.title, real.figure, real.blurb,
                     lambda r, ds: real.args(r, ds) + ["--n-images", "20", "--features", "0", "--top-k", "2",
                                                       "--device", "cpu"])
    monkeypatch.setattr(report_build, "ANALYSES", (small,))
    text, info = build_report(run, run_missing=True)
    assert info["ran"]["filters"]["error"] == "", info["ran"]
    assert (run / "analysis" / "filters" / "guided_backprop.png").is_file()
    assert info["sections"]["filters"] == "done" and "Fig. 5" in text


def test_report_cli_default_out_and_json(run, capsys):
    code, out, err = run_cli(["report", str(run), "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert info["out"] == str(run / "report.html") and (run / "report.html").is_file()
    assert set(SECTION_IDS[1:]) <= set(info["sections"])


@pytest.mark.parametrize("make, needle", [
    (lambda tmp: tmp / "missing", "run directory not found"),
    (lambda tmp: (tmp / "file.txt").write_text("x") and tmp / "file.txt", "not a run directory"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "is not a gan-probe run"),
])
def test_report_bad_run_dir(tmp_path, capsys, make, needle):
    code, _, err = run_cli(["report", str(make(tmp_path))], capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and needle in err, err


def test_report_cli_subprocess_error_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "gan_probe", "report", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_run_datasets():
    assert run_datasets("digits").train == "digits:train" and run_datasets("digits").test == "digits:test"
    assert run_datasets("cifar10:train").test == "cifar10:test"
    assert run_datasets("/data/faces").train == "/data/faces" and run_datasets("/data/faces").test == ""


def test_svg_plot_and_ticks():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    svg = line_plot({"a": ([0, 1, 2], [1.0, 0.5, 0.25]), "b": ([0, 2], [0.0, float("nan")])},
                    title="t", xlabel="step")
    assert svg.count("<polyline") == 2 and "nan" not in svg.split("<polyline")[1]
    assert "no data" in line_plot({}, title="t", xlabel="x")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (headless screenshot)")
def test_report_renders_in_headless_chromium(run, tmp_path):
    add_analysis(run, "walk", {"command": "gan-probe walk RUN"}, {"walk.png": (64, 64)})
    out = run / "report.html"
    write_report(run, out)
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=127.0.0.1:9",
                    f"--screenshot={shot}", "--window-size=1000,1400", out.resolve().as_uri()],
                   capture_output=True, timeout=120, check=False)
    im = Image.open(shot).convert("L")
    lo, hi = im.getextrema()
    assert hi - lo > 100 and len(im.getcolors(1 << 16)) > 20  # not blank: text and figures rendered


def test_pdf_without_a_browser_is_one_line_and_keeps_the_html(run, capsys, monkeypatch):
    import gan_probe.report.pdf as pdf

    monkeypatch.setattr(pdf, "find_browser", lambda: None)
    code, _, err = run_cli(["report", str(run), "--pdf"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "needs Chromium" in err
    assert (run / "report.html").is_file() and not (run / "report.pdf").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_pdf_with_chromium(run, capsys):
    code, _, err = run_cli(["report", str(run), "--pdf"], capsys)
    assert code == 0, err
    assert (run / "report.pdf").read_bytes()[:5] == b"%PDF-"


# ---------------------------------------------------------------- headline numbers (issue 18)
def write_fake_summary(run: Path, name: str, results: dict) -> None:
    """A summary written through the run contract, as the analyses write theirs."""
    from gan_probe import runs

    summary = runs.new_summary(name, results, argv=["gan-probe", name, str(run), "--seed", "7"],
                               settings={"seed": 7, "many": list(range(30))}, provenance={"checkpoint": "x.pt"},
                               seed=7, files={})
    runs.write_summary(run / "analysis" / name, summary)


def quantiles(base: float) -> dict:
    return {f"q{q:02d}" if q < 100 else "q100": base + q / 1000 for q in (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100)}


FAKE_RESULTS = {
    "walk": {"rows": 8, "sharp_rule": {"min_jump": 0.1, "refine": 8, "levels": 2, "abrupt": 0.5},
             "ppl": {"pixels": {"value": 123.456, "n": 1000, "epsilon": 1e-4},
                     "disc": {"value": 7.891, "n": 1000, "epsilon": 1e-4}},
             "smoothness": {space: {"paths": [{"path": i, "max_jump": 0.2, "zoom_ratio": 0.1, "steps": [0.1] * 9,
                                               "sharp": i in (2, 5)} for i in range(8)],
                                    "sharp_paths": [2, 5], "largest_jump": 0.4}
                            for space in ("pixels", "disc")}},
    "memorization": {"verdict": "no evidence of copying", "ct": 0.731, "auth_pct": 87.4, "n_flagged": 3,
                     "n_gen": 100, "flagged_fraction": 0.03, "gen_to_train": quantiles(1.184),
                     "test_to_train": quantiles(1.45), "gen_relative": quantiles(0.9), "test_relative": quantiles(1.0),
                     "ct_cells": [{"cell": i, "n_test": 5, "n_gen": 7} for i in range(20)]},
    "classify": {"features": "disc", "feature_dim": 3584, "dataset": "digits", "protocol": "digits",
                 "labels_per_class": 10, "repeats": 10, "report": "accuracy",
                 "accuracy": {"mean": 0.9347, "std": 0.0107, "values": [0.93] * 10},
                 "error": {"mean": 0.0653, "std": 0.0107},
                 "baselines": {"random-disc": {"accuracy": {"mean": 0.9131, "std": 0.0115}},
                               "pixels": {"accuracy": {"mean": 0.9082, "std": 0.0104}}},
                 "paired": {"random-disc": {"mean_difference": 0.0216, "trained_wins": 9}},
                 "validation": [{"C": c, "accuracy_mean": 0.9} for c in range(12)]},
    "filters": {"top_k_label_purity": {"trained": 0.77, "random": 0.8},
                "trained": [{"feature": i, "label": [1] * 5, "response": [0.5] * 5} for i in range(6)]},
    "score": {"metrics": ["fid", "kid", "pr"], "gen": {"n": 500}, "ref": {"n": 1347},
              "protocol": {"extractor": "pytorch-fid InceptionV3", "dims": 2048},
              "fid": 12.34, "kid": 0.00123, "kid_std": 0.0001, "precision": 0.7123, "recall": 0.6345},
    "arithmetic": {"sheet": {"png": "sheet.png", "index": "sheet.json"}},
}
EXPECTED = {  # section -> texts its headline must show, each made from FAKE_RESULTS' values
    "walk": ["123.5", "7.891", "2 of 8 paths"],
    "memorization": ["no evidence of copying", "0.731", "87.4", "3.0% (3 of 100)", "1.234 vs 1.5"],
    "classify": ["93.5% ± 1.1", "91.3% ± 1.1", "90.8% ± 1.0", "0.0216"],
    "filters": ["0.77 vs 0.8"],
    "score": ["12.3400", "0.001230 ± 0.000100", "0.7123", "0.6345", "N = 500 generated vs 1347 reference"],
    "arithmetic": ["wrote sheet"],
}


def section_of(text: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', text, re.S)
    assert m, sid
    return m.group(1)


def outside_details(section: str) -> str:
    return re.sub(r"<details>.*?</details>", "", section, flags=re.S)


def test_each_section_shows_its_headline_numbers_from_summary_json(run):
    for name, results in FAKE_RESULTS.items():
        write_fake_summary(run, name, results)
    write_fake_summary(run, "custom", {f"v{i}": i for i in range(40)} | {"recs": [{"a": i} for i in range(9)]})
    text, info = build_report(run)
    assert all(info["sections"][a.name] == "done" for a in ANALYSES)
    custom = outside_details(section_of(text, "extra-custom"))
    assert custom.count("<tr><td") == 15 and "v14" in custom and "v15" not in custom
    overview = section_of(text, "summary")
    for name, needles in EXPECTED.items():
        shown = outside_details(section_of(text, name))
        for needle in needles:
            assert escape_html(needle) in shown, (name, needle)
        assert f'href="#{name}"' in overview
        # no section lists more than 15 result rows outside its collapsed blocks
        assert shown.count("<tr><td") <= 15, (name, shown.count("<tr><td"))
        assert f"gan-probe {name} {run} --seed 7" in shown  # the command that made it
        assert "<summary>summary.json</summary>" in section_of(text, name)  # the rest: one click away
    # the paths' records and quantiles are in the collapsed block only
    assert "zoom_ratio" not in outside_details(section_of(text, "walk"))
    assert "q75" not in outside_details(section_of(text, "memorization"))
    # the summary at the top: each analysis's one line, and the curves' verdict
    assert "no evidence of copying; C_T 0.731; AuthPct 87.4; 3.0% flagged" in overview
    assert "PPL (pixels) 123.5" in overview and "FID 12.3400" in overview and "Verdict" not in overview
    assert re.search(r"Training curves</a>: <b>[^<]+</b>", overview)


def test_headlines_survive_summaries_without_their_keys(run):
    for name in FAKE_RESULTS:
        write_fake_summary(run, name, {"something_else": 1})
    text, info = build_report(run)
    for name in FAKE_RESULTS:
        assert f'id="{name}"' in text and info["sections"][name] == "done"
    overview = section_of(text, "summary")
    assert "— vs —" in text and "no PPL or smoothness in summary.json" in overview


def test_a_changed_value_changes_the_page(run):
    results = json.loads(json.dumps(FAKE_RESULTS["memorization"]))
    results.update(ct=-4.25, verdict="copying")
    write_fake_summary(run, "memorization", results)
    shown = outside_details(section_of(build_report(run)[0], "memorization"))
    assert "-4.25" in shown and "copying" in shown and "0.731" not in shown


def escape_html(s: str) -> str:
    from html import escape

    return escape(s)


@pytest.mark.parametrize("log, label", [
    ([{"step": s, "loss_d": 1.2, "loss_g": 0.9, "d_x": 0.6, "d_g_z1": 0.35} for s in range(50)], "losses stable"),
    ([{"step": s, "loss_d": 0.01, "loss_g": 7.0, "d_x": 0.99, "d_g_z1": 0.01} for s in range(50)], "D won"),
    ([{"step": s, "loss_d": 1.5, "loss_g": 0.5, "d_x": 0.4, "d_g_z1": 0.6} for s in range(50)], "D fooled"),
    ([{"step": s, "loss_d": 0.01 if s % 2 else 3.0, "loss_g": 1.0, "d_x": 0.7, "d_g_z1": 0.3} for s in range(50)],
     "losses oscillate"),
    ([{"step": 0, "loss_d": 1.0, "loss_g": 1.0}, {"step": 1, "loss_d": float("nan"), "loss_g": 1.0}], "diverged"),
    ([{"step": 0, "img_per_s": 3.0}], "no curves"),
])
def test_training_verdict(log, label):
    got, line = report_build.training_verdict(log)
    assert got == label, line


def test_training_verdict_reads_only_the_last_fifth():
    early = [{"step": s, "loss_d": 0.01, "loss_g": 7.0, "d_x": 0.99, "d_g_z1": 0.01} for s in range(80)]
    late = [{"step": s, "loss_d": 1.2, "loss_g": 0.9, "d_x": 0.6, "d_g_z1": 0.35} for s in range(80, 100)]
    label, line = report_build.training_verdict(early + late)
    assert label == "losses stable" and "steps 80-99" in line and "D(x) 0.6" in line


def test_classify_headline_shows_the_paired_comparison_and_verdict():
    from gan_probe.report.sections import classify_headline

    diff = {"mean": 0.0016, "std": 0.0083, "values": [0.01, -0.005]}
    summary = {"analysis": "classify", "features": "disc", "feature_dim": 896, "dataset": "digits",
               "labels_per_class": 10, "repeats": 10, "accuracy": {"mean": 0.9347, "std": 0.0107},
               "baselines": {"random-disc": {"features": "random-disc", "accuracy": {"mean": 0.9331, "std": 0.0115}}},
               "paired": {"random-disc": {"baseline": "random-disc", "draws": 10, "difference": diff,
                                          "favour_features": 4, "favour_baseline": 5, "ties": 1}},
               "verdict": {"gain_over_random": None, "text": "adds nothing measurable over a random network"}}
    rows = {name: (value, meaning) for name, value, meaning in classify_headline(summary).rows}
    assert rows["disc minus random-disc"][0] == "+0.16 ± 0.83 points"
    assert "4 favour disc, 5 random-disc" in rows["disc minus random-disc"][1]
    assert rows["verdict"][0] == "adds nothing measurable over a random network"
    assert "random-disc + L2-SVM, accuracy" in rows


def test_run_missing_streams_each_step_and_its_stderr(run, monkeypatch):
    import io

    fake = (Analysis("nosuchcommand", "Unknown", "-", "-", lambda r, ds: ["nosuchcommand", r]),)
    monkeypatch.setattr(report_build, "ANALYSES", fake)
    log = io.StringIO()
    ran = report_build.run_missing_analyses(run, run_datasets("digits"), log=log)
    lines = log.getvalue().splitlines()
    assert lines[0] == f"report: [1/1] nosuchcommand: gan-probe nosuchcommand {run}"
    assert any(ln.startswith("  nosuchcommand: ") and "No such command" in ln for ln in lines)  # the child's stderr
    assert lines[-1].startswith("report: [1/1] nosuchcommand: failed after 0:")
    assert "No such command" in ran["nosuchcommand"]["error"]


def test_run_missing_reduces_inception_samples_on_the_cpu_only(run, monkeypatch):
    import io

    fake = (Analysis("walk", "Walk", "-", "-", lambda r, ds: ["nosuchcommand", r],
                     cpu_args=lambda r, ds: ["nosuchcommand", r, "--small"], cpu_note="reduced on the CPU: x"),)
    monkeypatch.setattr(report_build, "ANALYSES", fake)
    for device, extra in (("cpu", ["--small"]), ("cuda", [])):
        monkeypatch.setattr(report_build, "analysis_device", lambda: device)
        log = io.StringIO()
        ran = report_build.run_missing_analyses(run, run_datasets("digits"), log=log)
        assert ran["walk"]["argv"] == ["-m", "gan_probe", "nosuchcommand", str(run), *extra]
        assert ("(reduced on the CPU: x)" in log.getvalue()) == (device == "cpu")
        assert ran["walk"].get("note", "") == ("reduced on the CPU: x" if device == "cpu" else "")


def test_the_cpu_commands_keep_the_full_protocol_one_flag_away():
    ds = run_datasets("digits")
    by_name = {a.name: a for a in ANALYSES}
    score, walk = by_name["score"], by_name["walk"]
    assert score.args("R", ds) == ["score", "R", "--ref", "digits:train"]  # by hand: FID-10k against train
    cpu = score.cpu_args("R", ds)
    assert cpu[:2] == ["score", "R"] and cpu[cpu.index("--n") + 1] != "10000"
    assert "--n 10000" in score.cpu_note
    assert walk.cpu_args("R", ds)[-2:] == ["--features", "pixels,disc"] and "gan-probe walk RUN --gif" in walk.cpu_note
