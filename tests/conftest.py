"""Shared fixtures. Tests stay offline and fast: tiny models, few steps, tiny images."""

from __future__ import annotations

import os

import pytest
import torch

# two cores: keep torch from oversubscribing them when pytest runs in parallel with other work
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
