"""Shared fixtures. Tests stay offline and fast: tiny models, few steps, tiny images."""

from __future__ import annotations

import os

import pytest
import torch

# two cores: keep torch from oversubscribing them when pytest runs in parallel with other work
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def _isolated_caches(tmp_path_factory):
    """Keep the suite away from the user's caches: statistics/feature cache, torch hub (so real
    Inception weights there cannot change what a test sees), and the dataset root."""
    root = tmp_path_factory.mktemp("caches")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAN_PROBE_CACHE", str(root / "gan-probe-cache"))
    mp.setenv("TORCH_HOME", str(root / "torch-home"))
    mp.setenv("GAN_PROBE_DATA_ROOT", str(root / "data"))
    mp.delenv("GAN_PROBE_INCEPTION_WEIGHTS", raising=False)
    # the encoders' weight caches too (Hugging Face hub, OpenAI's ~/.cache/clip, their env overrides)
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "GAN_PROBE_DINOV2_WEIGHTS", "GAN_PROBE_CLIP_WEIGHTS"):
        mp.delenv(var, raising=False)
    mp.setenv("HF_HOME", str(root / "hf-home"))
    mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))
    mp.setenv("HOME", str(root / "home"))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A RUN_DIR with a checkpoint of a tiny DCGAN trained 6 steps on digits (32 px, 1 channel)."""
    from gan_probe.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    cfg = TrainConfig(dataset="digits", max_steps=6, batch_size=32, ngf=8, ndf=8, nz=16, out=str(out),
                      checkpoint_every=3, log_every=2, device="cpu", seed=0)
    return train(cfg, progress=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run):
    return tiny_run / "checkpoints" / "last.pt"


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """A stand-in for pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``: the same architecture,
    keys and shapes, random seeded weights, BatchNorm running statistics set by a few train-mode
    batches (momentum=None, so they are plain averages). Built once and kept beside pytest's
    temp dirs (outside git), reused by later runs; ~95 MB."""
    from gan_probe.features.inception import write_standin_weights

    path = tmp_path_factory.getbasetemp().parent / "gan-probe-standin-inception-v1.pth"
    if not path.is_file():
        write_standin_weights(path)
    return path


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of ``tiny_run`` for tests that write analyses into a RUN_DIR
    (the session fixture itself must stay free of them)."""
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst
