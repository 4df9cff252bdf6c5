"""Preemption: a real SIGTERM / SIGUSR1 to a real `gan-probe train` process finishes the step in flight,
writes the checkpoint at that step, exits 75, and --resume lands on the uninterrupted run's weights."""

import json
import signal
import subprocess
import sys
import time

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
