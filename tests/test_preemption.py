"""Preemption: a real SIGTERM / SIGUSR1 to a real `gan-probe train` process finishes the step in flight,
writes the checkpoint at that step, exits 75, and --resume lands on the uninterrupted run's weights."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan_probe import checkpoint as ckpt
from gan_probe.preemption import PREEMPTED_EXIT_CODE
from test_train import _cli, same, weights

ARGS = ["train", "--dataset", "digits", "--batch-size", "8", "--ngf", "4", "--ndf", "4", "--nz", "8",
        "--device", "cpu", "--checkpoint-every", "100000", "--log-every", "1", "-q"]
STEPS = 400


def _logged_steps(run):
    path = run / "log.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


def _signal_mid_run(run, sig):
    p = subprocess.Popen([sys.executable, "-m", "gan_probe", *ARGS, "--max-steps", str(STEPS), "--out", str(run)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(_logged_steps(run)) < 3 and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    return p.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoints_the_step_in_flight_and_resume_loses_nothing(tmp_path, sig):
    run = tmp_path / "preempted"
    code, err = _signal_mid_run(run, sig)
    assert code == PREEMPTED_EXIT_CODE, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and sig.name in err and "--resume" in err and "Traceback" not in err
    state = ckpt.load_checkpoint(run / "checkpoints" / "last.pt")
    logged = _logged_steps(run)
    assert 3 <= state["step"] < STEPS, "the run finished before the signal; raise STEPS"
    # --checkpoint-every is out of reach: this checkpoint was written for the signal, at the last step run
    assert state["step"] == logged[-1] and logged == list(range(1, state["step"] + 1))
    if sig != signal.SIGTERM:
        return  # one full resume comparison is enough
    r = _cli(*ARGS, "--max-steps", str(STEPS), "--out", str(run), "--resume")
    assert r.returncode == 0, r.stderr
    r = _cli(*ARGS, "--max-steps", str(STEPS), "--out", str(tmp_path / "straight"))
    assert r.returncode == 0, r.stderr
    a, b = weights(run), weights(tmp_path / "straight")
    assert a[2] == b[2] == STEPS
    assert same(a[0], b[0]) and same(a[1], b[1])
    assert _logged_steps(run) == list(range(1, STEPS + 1))  # nothing lost, nothing logged twice


def test_stop_signals_restores_handlers():
    from gan_probe.preemption import stop_signals

    before = signal.getsignal(signal.SIGUSR1)
    with stop_signals() as flag:
        assert not flag
        signal.raise_signal(signal.SIGUSR1)
        assert flag and flag.signal_name == "SIGUSR1"
    assert signal.getsignal(signal.SIGUSR1) == before


TINY = dict(dataset="digits", batch_size=8, ngf=4, ndf=4, nz=8, device="cpu", log_every=1, num_workers=0,
            checkpoint_every=100000)


def _records(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_the_bar_ends_at_the_step_the_stop_message_names(tmp_path, monkeypatch, capsys):
    """A stop between two logged steps: the bar's last line shows the checkpoint's step, not the last logged one."""
    from gan_probe import train as train_mod
    from gan_probe.preemption import Preempted

    real_step, done = train_mod.train_step, []

    def step(*a, **k):
        result = real_step(*a, **k)
        done.append(1)
        if len(done) == 3:
            signal.raise_signal(signal.SIGUSR1)  # a real signal, to this process, during step 3
        return result

    monkeypatch.setattr(train_mod, "train_step", step)
    with pytest.raises(Preempted) as e:
        train_mod.train(train_mod.TrainConfig(out=str(tmp_path / "run"), max_steps=50, **{**TINY, "log_every": 4}))
    assert e.value.step == 3 and "at step 3;" in str(e.value)
    bar_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train ")]
    assert bar_lines and bar_lines[-1].startswith("train  3/50 "), bar_lines
    assert ckpt.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 3


@pytest.mark.slow
def test_a_signal_during_an_evaluation_abandons_it_and_resume_redoes_it(tmp_path, monkeypatch, inception_weights):
    """SIGTERM during an evaluation's first batch: the other batches are not run, the checkpoint is at the
    evaluated step, nothing of that evaluation is logged; --resume does it first, and the log and the scores
    equal an uninterrupted run's."""
    sys.path.insert(0, str(Path(__file__).parent / "scoring"))
    from scoring_helpers import _write_images

    from gan_probe import train as train_mod
    from gan_probe.metrics.scorer import Scorer
    from gan_probe.preemption import Preempted

    monkeypatch.setenv("GAN_PROBE_INCEPTION_WEIGHTS", str(inception_weights))
    ref = _write_images(tmp_path / "real", 8, 0)
    make = train_mod.make_evaluator

    def small_batches(*a, **k):  # 12 samples in 3 batches of 4
        ev = make(*a, **k)
        ev.scorer.options.batch_size = 4
        return ev

    monkeypatch.setattr(train_mod, "make_evaluator", small_batches)

    def cfg(out):
        return train_mod.TrainConfig(out=str(out), max_steps=4, eval_every=2, eval_n=12, eval_ref=str(ref),
                                     eval_metrics="fid", eval_probe=False, **TINY)

    real_update, batches = Scorer.update, []

    def update(self, images):
        real_update(self, images)
        batches.append(len(images))
        if len(batches) == 1:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(Scorer, "update", update)
    run = tmp_path / "run"
    with pytest.raises(Preempted) as e:
        train_mod.train(cfg(run), progress=False)
    assert e.value.step == 2 and batches == [4]  # stopped between the evaluation's batches
    state = ckpt.load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 2 and state["eval_pending"] == 2
    assert [(r.get("kind"), r["step"]) for r in _records(run)] == [(None, 1), (None, 2)]
    assert not (run / "checkpoints" / "best.pt").exists()

    monkeypatch.setattr(Scorer, "update", real_update)
    train_mod.train(cfg(run), resume=True, progress=False)
    train_mod.train(cfg(tmp_path / "straight"), progress=False)
    a, b = _records(run), _records(tmp_path / "straight")
    order = [(None, 1), (None, 2), ("eval", 2), (None, 3), (None, 4), ("eval", 4)]
    assert [(r.get("kind"), r["step"]) for r in a] == [(r.get("kind"), r["step"]) for r in b] == order
    fid = [[r["scores"]["fid"] for r in log if r.get("kind") == "eval"] for log in (a, b)]
    assert fid[0] == pytest.approx(fid[1], rel=1e-6)
    assert [r["best"]["step"] for r in a if r.get("kind")] == [r["best"]["step"] for r in b if r.get("kind")]
    assert weights(run)[2] == 4 and same(weights(run)[0], weights(tmp_path / "straight")[0])
