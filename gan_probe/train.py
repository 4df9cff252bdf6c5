"""`gan-probe train`: the DCGAN paper's training loop.

Adam (lr 2e-4, beta1 0.5), batch 128, BCE on D's logit, D and G updated
alternately each step as in pytorch/examples. Runs on the CPU, one GPU, or
several through ``torchrun --nproc_per_node N -m gan_probe train ...``
(DistributedDataParallel; ``--batch-size`` is per process; rank 0 writes).

Determinism: the data order of epoch ``e`` comes from ``(seed, e)`` and the
noise of step ``s`` on rank ``r`` from ``(seed, r, s)``, so a run killed and
resumed from its checkpoint continues exactly where it stopped.

RUN_DIR layout::

    config.json            train + model config
    log.jsonl              one JSON line per logged step
    samples/real.png       a batch of training images
    samples/epoch_001.png  G(fixed z) after each epoch (G in eval mode)
    checkpoints/last.pt    written atomically every --checkpoint-every steps and at the end
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from gan_probe import checkpoint as ckpt
from gan_probe.data import (TensorImageDataset, dataset_channels, dataset_image_size, load_dataset,
                            parse_dataset)
from gan_probe.device import resolve_device
from gan_probe.errors import GanProbeError
from gan_probe.io import atomic_write_text
from gan_probe.models import DCGANConfig, Discriminator, Generator, paper_config, sample_z
from gan_probe.sampling import derive_seed, save_grid

N_FIXED = 64  # samples in each epoch's grid


@dataclass
class TrainConfig:
    dataset: str = "digits"
    image_size: int = 0  # 0: the dataset's default size
    epochs: int = 25
    max_steps: int = 0  # 0: no limit (train --epochs)
    batch_size: int = 128
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    device: str = "auto"
    out: str = "runs/dcgan"
    checkpoint_every: int = 500
    log_every: int = 10
    num_workers: int = 2
    data_root: str = ""
    download: bool = False
    amp: bool = True  # bf16 autocast on CUDA; ignored on the CPU
    # model (ignored when --model-config gives a full DCGANConfig)
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    kernel_size: int = 4
    z_dist: str = "uniform"
    model_config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Refuse values that would train nonsense or fail only after the RUN_DIR is written."""
        checks = [
            (self.epochs >= 0, f"--epochs must be >= 0, got {self.epochs}"),
            (self.max_steps >= 0, f"--max-steps must be >= 0 (0: use --epochs), got {self.max_steps}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (math.isfinite(self.lr) and self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.beta1 < 1, f"--beta1 must be in [0, 1), got {self.beta1}"),
            (self.num_workers >= 0, f"--num-workers must be >= 0, got {self.num_workers}"),
            (self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"),
            (self.log_every >= 1, f"--log-every must be >= 1, got {self.log_every}"),
            (self.kernel_size >= 1, f"--kernel-size must be >= 1, got {self.kernel_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise GanProbeError(message)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def build_model_config(self) -> DCGANConfig:
        spec = parse_dataset(self.dataset)
        size = self.image_size or dataset_image_size(spec)
        channels = dataset_channels(spec)
        if self.model_config:
            cfg = DCGANConfig.from_dict(self.model_config)
            if cfg.image_size != size and self.image_size:
                raise GanProbeError(f"--image-size {size} disagrees with the model config's {cfg.image_size}")
            if cfg.channels != channels:
                cfg = DCGANConfig.from_dict({**cfg.to_dict(), "channels": channels})
            return cfg
        return paper_config(size, channels, self.nz, self.ngf, self.ndf, self.kernel_size, self.z_dist)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return _Dist(rank, world, local_rank)


def _device_for(d: _Dist, name: str) -> torch.device:
    device = resolve_device(name)
    if device.type == "cuda" and d.world > 1:
        device = torch.device("cuda", d.local_rank)
    return device


class _Batches:
    """Epoch-seeded batches: in-memory tensors are indexed directly, other
    datasets go through a DataLoader over the same sampler."""

    def __init__(self, dataset, cfg: TrainConfig, d: _Dist, device: torch.device):
        self.dataset = dataset
        self.sampler = DistributedSampler(dataset, num_replicas=d.world, rank=d.rank, shuffle=True,
                                          seed=cfg.seed, drop_last=True)
        self.batch_size = cfg.batch_size
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise GanProbeError(f"dataset {cfg.dataset} has {len(dataset)} images: fewer than one batch of "
                                f"{cfg.batch_size} per process; lower --batch-size")
        self.num_workers = cfg.num_workers
        self.pin = device.type == "cuda"

    def epoch(self, epoch: int, skip: int):
        """Batches of ``epoch``, starting after the first ``skip``."""
        self.sampler.set_epoch(epoch)
        idx = list(self.sampler)[: self.steps_per_epoch * self.batch_size]
        batches = [idx[i:i + self.batch_size] for i in range(skip * self.batch_size, len(idx), self.batch_size)]
        if isinstance(self.dataset, TensorImageDataset):
            for b in batches:
                yield self.dataset.images[b]
            return
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                            pin_memory=self.pin, persistent_workers=False)
        for images, _ in loader:
            yield images


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a run; returns RUN_DIR."""
    d = _init_distributed(cfg.device)
    try:
        return _train(cfg, resume, progress, d)
    finally:
        if d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, resume: bool, show_progress: bool, d: _Dist) -> Path:
    run_dir = Path(cfg.out)
    state = None
    if resume:
        last = ckpt.checkpoint_dir(run_dir) / ckpt.LAST
        if not last.is_file():
            raise GanProbeError(f"--resume: no checkpoint at {last}")
        state = ckpt.load_checkpoint(last)
        if state["opt_g"] is None or state["opt_d"] is None:
            raise GanProbeError(f"{last} holds no optimizer state (a release export): it cannot be resumed")
        saved = TrainConfig.from_dict(state["train"])
        # keep the run's identity (data, model, seed, optimiser); let the length and I/O change
        for name in ("dataset", "image_size", "batch_size", "lr", "beta1", "seed", "nz", "ngf", "ndf",
                     "kernel_size", "z_dist", "model_config"):
            setattr(cfg, name, getattr(saved, name))
    elif (ckpt.checkpoint_dir(run_dir) / ckpt.LAST).exists():
        raise GanProbeError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise GanProbeError(f"--out {run_dir} is a file, not a folder")
    cfg.validate()

    if cfg.max_steps <= 0 and cfg.epochs <= 0:
        raise GanProbeError("give --epochs or --max-steps greater than 0")
    device = _device_for(d, cfg.device)
    model_cfg = DCGANConfig.from_dict(state["model"]) if state else cfg.build_model_config()
    cfg.model_config = model_cfg.to_dict()

    torch.manual_seed(cfg.seed)
    dataset = load_dataset(cfg.dataset, model_cfg.image_size, model_cfg.channels,
                           cfg.data_root or None, cfg.download)
    batches = _Batches(dataset, cfg, d, device)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * batches.steps_per_epoch

    use_cuda = device.type == "cuda"
    if use_cuda:
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if use_cuda else torch.contiguous_format
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (use_cuda and cfg.amp) else contextlib.nullcontext()

    G = Generator(model_cfg).to(device, memory_format=memory_format)
    D = Discriminator(model_cfg).to(device, memory_format=memory_format)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    step = 0
    if state:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = state["step"]
        if "torch" in state["rng"]:
            torch.set_rng_state(state["rng"]["torch"])
    if d.world > 1:
        ids = [device.index] if use_cuda else None
        G = nn.parallel.DistributedDataParallel(G, device_ids=ids)
        D = nn.parallel.DistributedDataParallel(D, device_ids=ids)

    if d.main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(
            {"train": cfg.to_dict(), "model": model_cfg.to_dict(), "world_size": d.world}, indent=2))
    fixed_z = sample_z(model_cfg, N_FIXED, torch.Generator().manual_seed(derive_seed(cfg.seed, 0xF1ED)), device)
    criterion = nn.BCEWithLogitsLoss()

    def save(step: int) -> None:
        if d.main:
            ckpt.save_checkpoint(ckpt.checkpoint_dir(run_dir) / ckpt.LAST, ckpt.make_state(
                model=model_cfg, train=cfg.to_dict(), G=G, D=D, opt_g=opt_g, opt_d=opt_d, step=step,
                epoch=step // batches.steps_per_epoch, rng={"torch": torch.get_rng_state()}))

    def sample_grid(name: str) -> None:
        if d.main:
            g = ckpt._unwrap(G)
            g.eval()
            with torch.inference_mode():
                save_grid(g(fixed_z).float().cpu(), run_dir / "samples" / name, nrow=8)
            g.train()

    log = (run_dir / "log.jsonl").open("a") if d.main else None
    bar = _Progress(total_steps, step, enabled=show_progress and d.main)
    t_last, n_last = time.perf_counter(), 0
    try:
        while step < total_steps:
            epoch, skip = divmod(step, batches.steps_per_epoch)
            for real in batches.epoch(epoch, skip):
                if d.main and step == 0:
                    save_grid(real[:N_FIXED].float(), run_dir / "samples" / "real.png", nrow=8)
                real = real.to(device, non_blocking=True, memory_format=memory_format)
                b = real.size(0)
                z = sample_z(model_cfg, b, torch.Generator().manual_seed(derive_seed(cfg.seed, d.rank, step)),
                             device)
                ones = torch.ones(b, device=device)
                zeros = torch.zeros(b, device=device)
                # (1) D: maximise log D(x) + log(1 - D(G(z)))
                with amp:
                    fake = G(z)
                    out_real = D(real)
                    out_fake = D(fake.detach())
                    loss_d = criterion(out_real.float(), ones) + criterion(out_fake.float(), zeros)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                # (2) G: maximise log D(G(z)) (the non-saturating loss)
                with amp:
                    out_g = D(fake)
                    loss_g = criterion(out_g.float(), ones)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                step += 1
                n_last += b * d.world

                if step % cfg.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    stats = {
                        "step": step, "epoch": step / batches.steps_per_epoch,
                        "loss_d": loss_d.item(), "loss_g": loss_g.item(),
                        "d_x": torch.sigmoid(out_real.float()).mean().item(),
                        "d_g_z1": torch.sigmoid(out_fake.float()).mean().item(),
                        "d_g_z2": torch.sigmoid(out_g.float()).mean().item(),
                        "img_per_s": n_last / max(now - t_last, 1e-9),
                    }
                    t_last, n_last = now, 0
                    if log:
                        log.write(json.dumps(stats) + "\n")
                        log.flush()
                    bar.update(step, stats)
                if step % batches.steps_per_epoch == 0:
                    sample_grid(f"epoch_{step // batches.steps_per_epoch:03d}.png")
                if step % cfg.checkpoint_every == 0 or step == total_steps:
                    save(step)
                if step >= total_steps:
                    break
    finally:
        bar.close()
        if log:
            log.close()
    if step % batches.steps_per_epoch != 0:
        sample_grid(f"step_{step:07d}.png")
    return run_dir


class _Progress:
    """Rich progress bar with the DCGAN diagnostics; silent when disabled."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.p = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        # progress is not a result: stderr, so stdout stays for what the command reports
        self.p = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          TextColumn("{task.fields[info]}"), transient=False, console=Console(stderr=True))
        self.task = self.p.add_task("train", total=total, completed=done, info="")
        self.p.start()

    def update(self, step: int, s: dict) -> None:
        if self.p is None:
            return
        info = (f"ep {s['epoch']:.2f} D {s['loss_d']:.3f} G {s['loss_g']:.3f} "
                f"D(x) {s['d_x']:.2f} D(G(z)) {s['d_g_z1']:.2f}/{s['d_g_z2']:.2f} {s['img_per_s']:.0f} img/s")
        self.p.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()


def run_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """`gan-probe info`: what a checkpoint holds (no weights)."""
    state = ckpt.load_checkpoint(run_dir)
    model = DCGANConfig.from_dict(state["model"])
    train_cfg = state.get("train") or {}
    return {
        "checkpoint": state["path"],
        "dataset": train_cfg.get("dataset"),
        "image_size": model.image_size,
        "channels": model.channels,
        "nz": model.nz,
        "z_dist": model.z_dist,
        "step": state["step"],
        "epoch": state["epoch"],
        "d_feature_dim": model.d_feature_dim,
        "model": model.to_dict(),
        "train": train_cfg,
        "parameters": {
            "G": sum(p.numel() for p in Generator(model).parameters()),
            "D": sum(p.numel() for p in Discriminator(model).parameters()),
        },
    }
