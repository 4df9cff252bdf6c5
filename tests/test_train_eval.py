"""`train --eval-every`: eval lines in log.jsonl, best.pt by the registry's direction, D's probe, one-line
errors before anything is written, and 2 gloo processes that neither deadlock nor write twice.
Stand-in Inception weights (conftest), tiny models, a few steps, a tiny reference folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "scoring"))
from cli_runner import run_cli  # noqa: E402
from scoring_helpers import _write_images  # noqa: E402

from gan_probe import checkpoint as ckpt  # noqa: E402
from gan_probe.errors import GanProbeError  # noqa: E402
from gan_probe.train import TrainConfig, train  # noqa: E402

TINY = dict(dataset="digits", batch_size=16, ngf=4, ndf=4, nz=8, device="cpu", log_every=1, num_workers=0)
TINY_FLAGS = ["--dataset", "digits", "--batch-size", 16, "--ngf", 4, "--ndf", 4, "--nz", 8, "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def ref_folder(tmp_path_factory):
    return _write_images(tmp_path_factory.mktemp("eval_ref") / "real", 8, 0)


@pytest.fixture
def weights_env(inception_weights, monkeypatch):
    monkeypatch.setenv("GAN_PROBE_INCEPTION_WEIGHTS", str(inception_weights))
    return inception_weights


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_eval_lines_best_checkpoint_and_probe(tmp_path, ref_folder, weights_env):
    from gan_probe.metrics.score import ScoreOptions, compute_scores

    run = train(TrainConfig(out=str(tmp_path / "run"), max_steps=5, eval_every=2, eval_n=12,
                            eval_ref=str(ref_folder), eval_metrics="fid,kid", **TINY), progress=False)
    log = _log(run)
    assert [r["step"] for r in log if "kind" not in r] == [1, 2, 3, 4, 5]  # the training lines as before
    evals = [r for r in log if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [2, 4, 5]  # every 2 steps and at the end
    for r in evals:
        assert r["metrics"] == ["fid", "kid"] and r["n"] == 12 and r["ref"] == str(ref_folder)
        assert {"fid", "kid", "kid_std"} <= r["scores"].keys() and r["best"]["key"] == "fid"
        assert r["best"]["higher_is_better"] is False
        p = r["probe"]  # digits: on by default
        assert 0 <= p["disc"] <= 1 and 0 <= p["random_disc"] <= 1 and p["labels_per_class"] == 10
    assert evals[0]["best"]["improved"] and "protocol" in evals[0] and "protocol" not in evals[1]
    assert len({r["probe"]["random_disc"] for r in evals}) == 1  # the random D is probed once
    best_step = min(evals, key=lambda r: r["scores"]["fid"])["step"]
    assert evals[-1]["best"]["step"] == best_step
    assert [r["best"]["improved"] for r in evals] == [r["scores"]["fid"] == min(
        e["scores"]["fid"] for e in evals[: i + 1]) for i, r in enumerate(evals)]
    best = ckpt.load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["step"] == best_step and best["eval"]["value"] == min(r["scores"]["fid"] for r in evals)
    info = json.loads((run / "checkpoints" / "best.json").read_text())
    assert info["step"] == best_step and info["key"] == "fid"
    g, _ = ckpt.load_generator(run / "checkpoints" / "best.pt")  # a full checkpoint, usable anywhere
    assert g(torch.zeros(2, 8)).shape == (2, 1, 32, 32)
    # the last evaluation is `score RUN_DIR --n 12 --seed 0` on the last checkpoint
    again = compute_scores(run / "checkpoints" / "last.pt", ref_folder, "fid,kid",
                           ScoreOptions(n=12, seed=0, weights=weights_env, device="cpu", num_workers=0,
                                        progress=False, cache=False))
    assert evals[-1]["scores"]["fid"] == pytest.approx(again["fid"], rel=1e-6)
    assert evals[-1]["scores"]["kid"] == pytest.approx(again["kid"], rel=1e-6)


@pytest.mark.slow
def test_resume_keeps_the_best_judged_the_same_way(tmp_path, ref_folder, weights_env):
    kw = dict(eval_every=2, eval_n=12, eval_ref=str(ref_folder), eval_metrics="fid", eval_probe=False, **TINY)
    run = train(TrainConfig(out=str(tmp_path / "run"), max_steps=2, **kw), progress=False)
    first = json.loads((run / "checkpoints" / "best.json").read_text())
    train(TrainConfig(out=str(tmp_path / "run"), max_steps=4, **kw), resume=True, progress=False)
    evals = [r for r in _log(run) if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [2, 4] and "probe" not in evals[0]
    second = evals[1]
    assert second["best"]["improved"] == (second["scores"]["fid"] < first["value"])  # compared with the saved best
    assert json.loads((run / "checkpoints" / "best.json").read_text())["value"] == min(first["value"],
                                                                                       second["scores"]["fid"])


@pytest.mark.parametrize("show", [True, False])
def test_the_reference_pass_shows_its_progress_unless_quiet(tmp_path, weights_env, monkeypatch, show):
    """Computing --eval-ref's side takes minutes on a CPU before the first step: it shows its progress
    (train's -q silences it), where it used to say nothing at all."""
    import gan_probe.metrics.extract as extract
    from gan_probe.distributed import Dist
    from gan_probe.train_eval import make_evaluator

    seen = []
    real_bar = extract.progress_bar

    def recording_bar(total, label, show_it=True, **kw):
        seen.append((label, show_it))
        return real_bar(total, label, False, **kw)

    monkeypatch.setattr(extract, "progress_bar", recording_bar)
    ref = _write_images(tmp_path / "ref", 4, 1)  # a fresh folder: no statistics cache hit
    cfg = TrainConfig(out=str(tmp_path / "run"), eval_every=2, eval_n=4, eval_ref=str(ref), eval_metrics="fid",
                      eval_probe=False, **TINY)
    evaluator = make_evaluator(cfg, cfg.build_model_config(), Dist(), tmp_path / "run", progress=show)
    assert evaluator is not None and seen == [(f"Inception: {ref}", show)]
    assert not (tmp_path / "run").exists()


def test_each_evaluation_is_one_line_on_the_terminal():
    """The scores used to go to log.jsonl only; the training's progress now shows one line per evaluation."""
    import io

    from gan_probe.progress import TrainingBar
    from gan_probe.train_eval import eval_summary

    record = {"step": 200, "scores": {"fid": 41.234, "kid": 0.0123, "kid_std": 0.001, "kid_subset_size": 500},
              "best": {"key": "fid", "improved": False, "value": 40.5, "step": 100},
              "probe": {"disc": 0.8312, "random_disc": 0.7105}, "time_s": 74.2}
    line = eval_summary(record)
    assert line == "eval at step 200: fid 41.23 (best 40.5 at step 100), kid 0.0123; D probe 0.831 vs random D " \
                   "0.711; 1:14"
    record["best"]["improved"], record["probe"] = True, None
    assert eval_summary(record).startswith("eval at step 200: fid 41.23 (best so far), kid 0.0123; 1:14")
    stream = io.StringIO()
    bar = TrainingBar(10, 0, stream=stream, every=1e9)
    bar.note(line)
    bar.close()
    assert stream.getvalue().splitlines()[0] == line
    TrainingBar(10, 0, show=False).note(line)  # -q / ranks other than 0: nothing, no error


def test_direction_comes_from_the_registry():
    from gan_probe.metrics.registry import get_metric

    assert [get_metric(m).higher_is_better for m in ("fid", "kid", "is", "pr", "dc")] == [False, False, True, True,
                                                                                           True]
    assert get_metric("pr").headline() == "precision" and get_metric("fid").headline() == "fid"


@pytest.mark.parametrize("flags,words", [
    (["--eval-every", 2, "--eval-ref", "/no/such/folder"], ["--eval-ref"]),
    (["--eval-every", 2, "--eval-ref", "nosuchdataset:train"], ["--eval-ref"]),
    (["--eval-every", 2, "--eval-ref", "digits", "--eval-metrics", "nope"], ["--eval-metrics has unknown metric"]),
    (["--eval-every", 2], ["--eval-ref is required by"]),
    (["--eval-every", 2, "--eval-ref", "digits", "--eval-features", "nope"], ["--eval-features must be one of"]),
    (["--eval-ref", "digits"], ["--eval-ref needs eval_every > 0"]),
    (["--dataset", "cifar10", "--eval-every", 2, "--eval-ref", "digits", "--eval-probe"], ["--eval-probe needs"]),
])
def test_bad_eval_options_are_one_line_and_nothing_is_written(tmp_path, capsys, flags, words):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", *TINY_FLAGS, "--max-steps", 2, "--out", out, *flags], capsys)
    assert code == 1, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    assert not out.exists()


def test_eval_options_are_checked_by_the_library():
    with pytest.raises(GanProbeError, match=r"^eval_n must be >= 2") as e:
        TrainConfig(eval_n=1).validate()
    assert e.value.param == "eval_n"
    with pytest.raises(GanProbeError, match=r"^eval_every must be >= 0"):
        TrainConfig(eval_every=-1).validate()


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_gloo_processes_evaluate_without_deadlock(tmp_path, ref_folder, inception_weights):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GAN_PROBE_INCEPTION_WEIGHTS": str(inception_weights)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "gan_probe", "train", *map(str, TINY_FLAGS), "--log-every", "1", "--num-workers", "0",
                        "--max-steps", "3", "--eval-every", "2", "--eval-n", "11", "--eval-ref", str(ref_folder),
                        "--eval-metrics", "fid", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    evals = [x for x in _log(out) if x.get("kind") == "eval"]
    assert [x["step"] for x in evals] == [2, 3]  # rank 0 alone writes: one line per evaluation
    assert all(x["n"] == 11 and x["scores"]["fid"] > 0 for x in evals)
    assert "probe" in evals[0]
    assert (out / "checkpoints" / "best.pt").is_file()
