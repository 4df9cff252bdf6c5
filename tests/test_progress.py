"""Progress on stderr: a bar on a terminal, plain lines with the time left elsewhere (pipes, the
subprocesses of `report --run-missing`), nothing for a short loop or when switched off."""

from __future__ import annotations

import io

from gan_probe import progress
from gan_probe.progress import clock, progress_bar, progress_line
from cli_runner import run_cli


def test_progress_line_has_count_elapsed_and_time_left():
    line = progress_line("Inception: digits:train", 25, 100, 30.0)
    assert line == "Inception: digits:train  25/100 (25%), 0:30 elapsed, about 1:30 left"
    assert progress_line("x", 100, 100, 61.0) == "x  100/100 (100%), 1:01 elapsed"  # done: no time left
    assert progress_line("x", 7, None, 5.0) == "x  7, 0:05 elapsed"  # unknown total: no percent, no ETA
    assert clock(3725) == "1:02:05" and clock(59.6) == "1:00"


def test_lines_replace_the_bar_when_stderr_is_not_a_terminal():
    out = io.StringIO()  # not a tty
    with progress_bar(4, "pass", every=0.0, stream=out) as advance:
        for _ in range(4):
            advance(1)
    lines = out.getvalue().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["pass  1/4 (25%)", "pass  2/4 (50%)", "pass  3/4 (75%)",
                                                  "pass  4/4 (100%)"]
    assert all("elapsed" in ln for ln in lines) and all("left" in ln for ln in lines[:3])
    assert "left" not in lines[-1]


def test_short_loops_and_switched_off_bars_print_nothing():
    out = io.StringIO()
    with progress_bar(3, "quick", every=3600.0, stream=out) as advance:
        advance(3)
    with progress_bar(3, "off", show=False, every=0.0, stream=out) as advance:
        advance(1)
    assert out.getvalue() == ""


def test_walk_prints_its_path_length_progress_when_not_on_a_terminal(tiny_checkpoint, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    code, _, err = run_cli(["walk", tiny_checkpoint, "--rows", "2", "--steps", "3", "--features", "pixels",
                            "--ppl-samples", "8", "--batch-size", "4", "--out", tmp_path], capsys)
    assert code == 0, err
    assert "path length (pixels), pairs  4/8 (50%)" in err and "left" in err
    assert "walk smoothness (pixels), paths  1/2 (50%)" in err
    code, stdout, err = run_cli(["walk", tiny_checkpoint, "--rows", "2", "--steps", "3", "--features", "pixels",
                                 "--ppl-samples", "8", "--batch-size", "4", "--out", tmp_path, "--json"], capsys)
    assert code == 0 and "elapsed" not in err  # --json: no progress


def test_memorization_prints_feature_progress_when_not_on_a_terminal(tiny_checkpoint, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    code, _, err = run_cli(["memorization", tiny_checkpoint, "--train", "digits:train", "--n", "40",
                            "--batch-size", "16", "--out", tmp_path], capsys)
    assert code == 0, err
    assert "pixels features: GEN" in err and "16/40 (40%)" in err
    assert "pixels features: TRAIN digits:train  16/1347" in err


def test_training_lines_when_not_a_terminal_count_only_this_sessions_steps():
    from gan_probe.progress import TrainingBar

    out = io.StringIO()
    rec = {"epoch": 1.0, "loss_d": 0.5, "loss_g": 2.0, "d_x": 0.8, "d_g_z1": 0.2, "d_g_z2": 0.1, "img_per_s": 300}
    bar = TrainingBar(100, 50, every=0.0, stream=out)  # resumed at step 50
    for step in (60, 70):
        bar.update(step, rec)
    bar.close()
    lines = out.getvalue().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["train  60/100 (60%)", "train  70/100 (70%)", "train  70/100 (70%)"]
    assert "left" in lines[0] and "D(x) 0.80" in lines[0] and "300 img/s" in lines[-1]
    quiet = io.StringIO()
    off = TrainingBar(100, 0, show=False, stream=quiet)
    off.update(10, rec)
    off.close()
    assert quiet.getvalue() == ""
