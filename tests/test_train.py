"""Training, checkpoints, resume, sampling and multi-process training on digits (tiny models)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gan_probe import checkpoint as ckpt
from gan_probe.errors import GanProbeError
from gan_probe.train import TrainConfig, train

TINY = dict(dataset="digits", batch_size=16, ngf=8, ndf=8, nz=16, device="cpu", log_every=1)


def cfg(out, **kw):
    return TrainConfig(out=str(out), **{**TINY, **kw})


def weights(run):
    s = ckpt.load_checkpoint(run)
    return s["G"], s["D"], s["step"]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_few_steps_write_everything(tiny_run):
    assert (tiny_run / "checkpoints" / "last.pt").is_file()
    log = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]
    assert {"loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "img_per_s", "epoch"} <= set(log[0])
    assert all(0 <= r["d_x"] <= 1 for r in log)
    conf = json.loads((tiny_run / "config.json").read_text())
    assert conf["model"]["nz"] == 16 and conf["train"]["dataset"] == "digits"
    assert (tiny_run / "samples" / "real.png").is_file()
    assert (tiny_run / "samples" / "step_0000006.png").is_file()
    state = ckpt.load_checkpoint(tiny_run)
    assert state["step"] == 6 and state["opt_g"]["state"] and "torch" in state["rng"]


def test_epoch_grids(tmp_path):
    run = train(cfg(tmp_path / "r", batch_size=128, epochs=2, ngf=4, ndf=4), progress=False)
    assert sorted(p.name for p in (run / "samples").glob("epoch_*.png")) == ["epoch_001.png", "epoch_002.png"]
    assert ckpt.load_checkpoint(run)["step"] == 2 * (1347 // 128)


def test_seeded_runs_are_identical(tmp_path):
    a = weights(train(cfg(tmp_path / "a", max_steps=5, seed=3), progress=False))
    b = weights(train(cfg(tmp_path / "b", max_steps=5, seed=3), progress=False))
    c = weights(train(cfg(tmp_path / "c", max_steps=5, seed=4), progress=False))
    assert same(a[0], b[0]) and same(a[1], b[1])
    assert not same(a[0], c[0])


def test_resume_continues_exactly(tmp_path):
    whole = weights(train(cfg(tmp_path / "whole", max_steps=8), progress=False))
    part = cfg(tmp_path / "part", max_steps=5)
    train(part, progress=False)
    assert weights(part.out)[2] == 5
    resumed = weights(train(cfg(tmp_path / "part", max_steps=8), resume=True, progress=False))
    assert resumed[2] == 8
    assert same(whole[0], resumed[0]) and same(whole[1], resumed[1])
    log = [json.loads(line)["step"] for line in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert log == list(range(1, 9))


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gan_probe", *args], capture_output=True, text=True, **kw)


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL mid-run: last.pt is never half-written and resuming lands on the uninterrupted weights."""
    args = ["train", "--dataset", "digits", "--batch-size", "8", "--ngf", "4", "--ndf", "4", "--nz", "8",
            "--device", "cpu", "--checkpoint-every", "3", "-q"]
    steps = 400
    p = subprocess.Popen([sys.executable, "-m", "gan_probe", *args, "--max-steps", str(steps),
                          "--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = ckpt.load_checkpoint(last)["step"]  # loads: the file is whole
    assert 0 < killed_at < steps, "the run finished before it could be killed; raise steps"
    r = _cli(*args, "--max-steps", str(steps), "--out", str(tmp_path / "killed"), "--resume")
    assert r.returncode == 0, r.stderr
    r = _cli(*args, "--max-steps", str(steps), "--out", str(tmp_path / "straight"))
    assert r.returncode == 0, r.stderr
    a, b = weights(tmp_path / "killed"), weights(tmp_path / "straight")
    assert a[2] == b[2] == steps
    assert same(a[0], b[0]) and same(a[1], b[1])


def test_refuses_to_overwrite_and_bad_resume(tmp_path, tiny_run):
    with pytest.raises(GanProbeError, match="already holds a run; continue it with resume=True") as e:
        train(cfg(tiny_run, max_steps=1), progress=False)
    assert e.value.for_cli().startswith(f"--out {tiny_run} already holds a run; continue it with --resume or")
    with pytest.raises(GanProbeError, match="no checkpoint"):
        train(cfg(tmp_path / "nothing", max_steps=1), resume=True, progress=False)
    with pytest.raises(GanProbeError, match="fewer than one batch"):
        train(cfg(tmp_path / "big", batch_size=5000, max_steps=1), progress=False)


DDP_TINY = ("--dataset", "digits", "--batch-size", "16", "--ngf", "4", "--ndf", "4", "--nz", "8", "--device", "cpu",
            "--log-every", "1", "-q")


def _torchrun_train(out, *args, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node NPROC -m gan_probe train`` of a tiny model on the CPU (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), "-m", "gan_probe", "train", *DDP_TINY, "--out", str(out), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp"
    r = _torchrun_train(out, "--max-steps", 4)
    assert r.returncode == 0, r.stderr[-2000:]
    conf = json.loads((out / "config.json").read_text())
    assert conf["world_size"] == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2, 3, 4]  # rank 0 alone writes
    state = ckpt.load_checkpoint(out)
    assert state["step"] == 4 and state["world_size"] == 2
    assert not any(k.startswith("module.") for k in state["G"])  # saved unwrapped, loadable anywhere
    g, _ = ckpt.load_generator(out)
    assert g(torch.zeros(2, 8)).shape == (2, 1, 32, 32)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_resume_under_another_number_of_processes_is_refused(tmp_path):
    out = tmp_path / "one"
    train(TrainConfig(out=str(out), **{**TINY, "ngf": 4, "ndf": 4, "nz": 8, "max_steps": 2}), progress=False)
    assert ckpt.load_checkpoint(out)["world_size"] == 1
    before = (out / "checkpoints" / "last.pt").read_bytes()
    r = _torchrun_train(out, "--max-steps", 4, "--resume")
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if "trained by 1 process(es), and 2 are running now" in line]
    assert len(lines) == 2 and "GanProbeError" not in r.stderr, r.stderr[-2000:]  # one line per process, no traceback
    assert "resume it with 1 (torchrun --nproc_per_node 1" in lines[0]
    assert (out / "checkpoints" / "last.pt").read_bytes() == before  # nothing trained, nothing lost


def test_world_size_check_reads_old_checkpoints_from_config_json(tiny_run, tmp_path):
    import shutil

    from gan_probe.train import prepare_run, saved_world_size

    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    state = ckpt.load_checkpoint(run)
    assert saved_world_size(state, run) == 1
    with pytest.raises(GanProbeError, match=r"^resume: .* trained by 1 process\(es\), and 3 are running") as e:
        prepare_run(TrainConfig(out=str(run)), resume=True, world=3)
    assert e.value.param == "resume"
    del state["world_size"]  # a checkpoint written before the field: config.json says
    assert saved_world_size(state, run) == 1
    (run / "config.json").unlink()
    assert saved_world_size(state, run) is None  # nothing says: not checked


def test_release_export_loads_but_cannot_resume(tiny_run, tmp_path):
    dst = tmp_path / "rel" / "checkpoints" / "last.pt"
    ckpt.export_for_release(tiny_run, dst)
    assert dst.stat().st_size < (tiny_run / "checkpoints" / "last.pt").stat().st_size
    g, _ = ckpt.load_generator(tmp_path / "rel")
    assert g(torch.zeros(1, 16)).shape == (1, 1, 32, 32)
    with pytest.raises(GanProbeError, match="cannot be resumed"):
        train(cfg(tmp_path / "rel", max_steps=10), resume=True, progress=False)


def test_library_errors_name_the_parameter_and_the_cli_its_flag(tmp_path):
    with pytest.raises(GanProbeError, match=r"^lr must be > 0, got -1") as e:
        TrainConfig(lr=-1.0).validate()
    assert e.value.param == "lr"
    with pytest.raises(GanProbeError, match=r"^batch_size 5000 is too large") as e:
        train(cfg(tmp_path / "big", batch_size=5000, max_steps=1), progress=False)
    assert e.value.param == "batch_size"
    with pytest.raises(GanProbeError, match="nothing to train"):
        TrainConfig(epochs=0, max_steps=0).validate()
    r = _cli("train", "--lr", "-1", "--out", str(tmp_path / "cli"), "-q")
    assert r.returncode == 1 and "--lr must be > 0, got -1.0" in r.stderr, r.stderr
    assert not (tmp_path / "cli").exists()  # refused before anything is written


def test_prepare_run_keeps_the_run_identity_on_resume(tiny_run):
    from gan_probe.train import RUN_IDENTITY, prepare_run

    c = TrainConfig(out=str(tiny_run), lr=0.1, nz=99, seed=7, max_steps=50, log_every=5)
    state = prepare_run(c, resume=True)
    saved = TrainConfig.from_dict(state["train"])
    assert all(getattr(c, name) == getattr(saved, name) for name in RUN_IDENTITY)
    assert (c.lr, c.nz, c.seed) == (saved.lr, 16, 0)
    assert (c.max_steps, c.log_every) == (50, 5)  # length and I/O follow the new settings


def test_build_nets_restores_and_train_step_updates_both(tiny_run):
    from gan_probe.train import build_nets, step_noise, train_step

    state = ckpt.load_checkpoint(tiny_run)
    model = ckpt.model_config(state)
    c = TrainConfig.from_dict(state["train"])
    nets, step = build_nets(model, c, torch.device("cpu"), state)
    assert step == 6 and same(nets.G.state_dict(), state["G"])
    z = step_noise(model, 8, c.seed, 0, step)
    assert torch.equal(z, step_noise(model, 8, c.seed, 0, step))
    assert not torch.equal(z, step_noise(model, 8, c.seed, 1, step))  # each rank its own noise
    g0, d0 = ({k: v.clone() for k, v in n.state_dict().items()} for n in (nets.G, nets.D))
    r = train_step(nets, torch.rand(8, 1, 32, 32) * 2 - 1, z)
    assert torch.isfinite(r.loss_d) and torch.isfinite(r.loss_g) and r.out_real.shape == (8,)
    assert not same(g0, nets.G.state_dict()) and not same(d0, nets.D.state_dict())


def test_g_update_skips_d_weight_gradients_and_keeps_g_gradients_bit_for_bit(tiny_run):
    """pytorch/examples backpropagates G's loss into every weight and throws D's gradients away;
    train_step computes G's alone. Both give the same weights, bit for bit."""
    import copy

    from torch.nn import functional as F

    from gan_probe.train import build_nets, step_noise, train_step

    state = ckpt.load_checkpoint(tiny_run)
    model, c = ckpt.model_config(state), TrainConfig.from_dict(state["train"])
    ours, _ = build_nets(model, c, torch.device("cpu"), state)
    ref = copy.deepcopy(ours)
    torch.manual_seed(1)
    for step in range(3):
        real, z = torch.rand(8, 1, 32, 32) * 2 - 1, step_noise(model, 8, c.seed, 0, step)
        r = train_step(ours, real, z)
        d_grads = [p.grad.clone() for p in ours.D.parameters()]
        fake = ref.G(z)  # the full-backward step, as pytorch/examples writes it
        loss_d = (F.binary_cross_entropy_with_logits(ref.D(real), torch.ones(8))
                  + F.binary_cross_entropy_with_logits(ref.D(fake.detach()), torch.zeros(8)))
        ref.opt_d.zero_grad()
        loss_d.backward()
        d_step_grads = [p.grad.clone() for p in ref.D.parameters()]
        ref.opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(ref.D(fake), torch.ones(8))
        ref.opt_g.zero_grad()
        loss_g.backward()
        ref.opt_g.step()
        assert torch.equal(r.loss_g, loss_g) and torch.equal(r.loss_d, loss_d)
        assert same(ours.G.state_dict(), ref.G.state_dict()) and same(ours.D.state_dict(), ref.D.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(d_grads, d_step_grads))  # G's loss added nothing to D's
        assert not all(torch.equal(p.grad, g) for p, g in zip(ref.D.parameters(), d_step_grads))


def test_a_grid_that_cannot_be_written_is_reported(tmp_path):
    from gan_probe.train import RunWriter

    w = RunWriter(tmp_path / "run")
    (tmp_path / "run" / "samples" / "bad.png").mkdir()
    w.grid(torch.zeros(4, 1, 8, 8), "good.png")
    w.grid(torch.zeros(4, 1, 8, 8), "bad.png")  # written in the background: fails there
    with pytest.raises(GanProbeError, match="is a folder"):
        w.close()
    assert (tmp_path / "run" / "samples" / "good.png").is_file()
