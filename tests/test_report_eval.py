"""The report's "Scores during training": plotted when log.jsonl holds train --eval-every's lines, absent otherwise."""

from __future__ import annotations

import json
import shutil

from gan_probe.report import build_report


def _eval_line(step, fid, disc, best_step, best):
    return {"kind": "eval", "step": step, "epoch": step / 84, "n": 500, "ref": "digits:train", "features": "inception",
            "metrics": ["fid", "kid"], "scores": {"fid": fid, "kid": fid / 1000, "kid_std": 0.001},
            "best": {"key": "fid", "higher_is_better": False, "improved": best_step == step, "value": best,
                     "step": best_step},
            "probe": {"disc": disc, "disc_std": 0.01, "random_disc": 0.71, "random_disc_std": 0.01,
                      "labels_per_class": 10, "repeats": 3, "test": "digits:test"}}


def test_report_plots_the_eval_lines(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before, _ = build_report(run)
    assert "Scores during training" not in before and "Linear probe" not in before

    lines = [_eval_line(100, 180.5, 0.62, 100, 180.5), _eval_line(200, 95.25, 0.83, 200, 95.25),
             _eval_line(300, 120.0, 0.86, 200, 95.25)]
    with (run / "log.jsonl").open("a") as f:
        f.write("".join(json.dumps(x) + "\n" for x in lines))
    conf = json.loads((run / "config.json").read_text())
    conf["train"].update(eval_every=100, eval_ref="digits:train", eval_probe=False)
    (run / "config.json").write_text(json.dumps(conf))
    text, _ = build_report(run)
    assert "Scores during training" in text
    assert 'aria-label="fid over training"' in text and 'aria-label="kid over training"' in text
    assert "Linear probe on D&#x27;s features (10 labels/class)" in text
    assert "<title>trained D</title>" in text and "<title>random D</title>" in text
    assert "fid 95.25</b> at step 200" in text and "lower is better" in text
    assert "trained D 0.86, random D 0.71" in text
    assert "--eval-every 100 --eval-ref digits:train --no-eval-probe" in text  # the command that made the run
    # the training curves still read only the training lines
    assert text.count("<title>loss D</title>") == 1
