"""`gan-probe train`: the DCGAN paper's training loop.

Adam (lr 2e-4, beta1 0.5), batch 128, BCE on D's logit, D and G updated
alternately each step as in pytorch/examples. Runs on the CPU, one GPU, or
several through ``torchrun --nproc_per_node N -m gan_probe train ...``
(DistributedDataParallel; ``--batch-size`` is per process; rank 0 writes).

Determinism: the data order of epoch ``e`` comes from ``(seed, e)`` and the
noise of step ``s`` on rank ``r`` from ``(seed, r, s)``, so a run killed and
resumed from its checkpoint continues exactly where it stopped (bit for bit on
the CPU; on a GPU with ``--deterministic``). The checkpoint records the number of
processes, and a resume under another number is refused: the data order and the
epoch position depend on it.

Precision: on CUDA GPUs with native bf16 (compute capability >= 8.0) the forward
passes run under bf16 autocast (``--no-amp`` turns it off); everything else is
float32. See :mod:`gan_probe.device`.

RUN_DIR layout::

    config.json            train + model config
    log.jsonl              one JSON line per logged step
    samples/real.png       a batch of training images
    samples/epoch_001.png  G(fixed z) after each epoch (G in eval mode)
    checkpoints/last.pt    written atomically every --checkpoint-every steps, at the end, and on
                           SIGTERM / SIGUSR1 after the step in flight (then :class:`Preempted`;
                           see :mod:`gan_probe.preemption`)
    checkpoints/best.pt    with --eval-every: the best evaluation's weights (:mod:`gan_probe.train_eval`)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, DistributedSampler

from gan_probe import checkpoint as ckpt
from gan_probe.data import (TensorImageDataset, dataset_channels, dataset_image_size, load_dataset,
                            parse_dataset)
from gan_probe.device import bf16_autocast_ok, training_autocast, training_determinism
from gan_probe.distributed import Dist, any_across, init_distributed
from gan_probe.errors import GanProbeError
from gan_probe.io import atomic_write_text
from gan_probe.models import DCGANConfig, Discriminator, Generator, paper_config, sample_z
from gan_probe.preemption import Preempted, stop_signals
from gan_probe.progress import TrainingBar
from gan_probe.sampling import derive_seed, save_grid
from gan_probe.train_eval import EVAL_PENDING, eval_summary, make_evaluator

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
    amp: bool = True  # bf16 autocast on CUDA GPUs with native bf16 (compute capability >= 8.0); else ignored
    deterministic: bool = False  # deterministic algorithms only, cuDNN autotuner off (bitwise repeatable on GPU)
    # model (ignored when --model-config gives a full DCGANConfig)
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    kernel_size: int = 4
    z_dist: str = "uniform"
    model_config: dict[str, Any] = field(default_factory=dict)
    # scores during training (gan_probe.train_eval); none of them is part of the run's identity
    eval_every: int = 0  # steps between evaluations (0: none)
    eval_n: int = 1000  # generated samples per evaluation (the same latents every time)
    eval_ref: str = ""  # the reference SOURCE, as `score --ref`
    eval_features: str = "inception"  # the feature space, as `score --features`
    eval_metrics: str = ""  # comma list, as `score --metrics` ("": score's defaults for the space)
    eval_weights: str = ""  # the feature network's weights file ("": searched for, as `score` does)
    eval_probe: bool | None = None  # D's linear probe on digits (None: on for digits when eval_every > 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Refuse values that would train nonsense or fail only after the RUN_DIR is written."""
        checks = [
            ("epochs", self.epochs >= 0, ">= 0"),
            ("max_steps", self.max_steps >= 0, ">= 0 (0: use epochs)"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", math.isfinite(self.lr) and self.lr > 0, "> 0"),
            ("beta1", 0 <= self.beta1 < 1, "in [0, 1)"),
            ("num_workers", self.num_workers >= 0, ">= 0"),
            ("checkpoint_every", self.checkpoint_every >= 1, ">= 1"),
            ("log_every", self.log_every >= 1, ">= 1"),
            ("kernel_size", self.kernel_size >= 1, ">= 1"),
            ("eval_every", self.eval_every >= 0, ">= 0 (0: no evaluation)"),
            ("eval_n", self.eval_n >= 2, ">= 2"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise GanProbeError(f"{name} must be {rule}, got {getattr(self, name)}", param=name)
        if self.max_steps == 0 and self.epochs == 0:
            raise GanProbeError("nothing to train: epochs and max_steps are both 0")

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
                raise GanProbeError(f"image_size {size} disagrees with the model config's {cfg.image_size}",
                                    param="image_size")
            if cfg.channels != channels:
                cfg = DCGANConfig.from_dict({**cfg.to_dict(), "channels": channels})
            return cfg
        return paper_config(size, channels, self.nz, self.ngf, self.ndf, self.kernel_size, self.z_dist)


class _Batches:
    """Epoch-seeded batches: in-memory tensors are indexed directly, other
    datasets go through a DataLoader over the same sampler."""

    def __init__(self, dataset, cfg: TrainConfig, d: Dist, device: torch.device):
        self.dataset = dataset
        self.sampler = DistributedSampler(dataset, num_replicas=d.world, rank=d.rank, shuffle=True,
                                          seed=cfg.seed, drop_last=True)
        self.batch_size = cfg.batch_size
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise GanProbeError(f"batch_size {cfg.batch_size} is too large: dataset {cfg.dataset} has "
                                f"{len(dataset)} images, fewer than one batch per process", param="batch_size")
        self.num_workers = cfg.num_workers
        self.pin = device.type == "cuda"

    def epoch(self, epoch: int, skip: int) -> Iterator[torch.Tensor]:
        """Batches of ``epoch``, starting after the first ``skip``."""
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler)[: self.steps_per_epoch * self.batch_size], dtype=torch.long)
        batches = order.view(self.steps_per_epoch, self.batch_size)[skip:]
        if isinstance(self.dataset, TensorImageDataset):
            images = self.dataset.images
            for b in batches:
                yield images.index_select(0, b)
            return
        loader = DataLoader(self.dataset, batch_sampler=batches.tolist(), num_workers=self.num_workers,
                            pin_memory=self.pin, persistent_workers=False)
        for images, _ in loader:
            yield images


# what a resumed run keeps from its checkpoint (data, model, seed, optimiser); length and I/O may change
RUN_IDENTITY = ("dataset", "image_size", "batch_size", "lr", "beta1", "seed", "nz", "ngf", "ndf",
                "kernel_size", "z_dist", "model_config")


def prepare_run(cfg: TrainConfig, resume: bool = False, world: int = 1) -> dict[str, Any] | None:
    """Check ``cfg.out`` and the settings before anything is written. With ``resume``: load the
    run's last checkpoint and copy its :data:`RUN_IDENTITY` into ``cfg``; returns that state
    (None for a new run). A resume by ``world`` processes of a run trained by another number is
    refused (the data order, epoch position and effective batch depend on it)."""
    run_dir = Path(cfg.out)
    last = ckpt.checkpoint_dir(run_dir) / ckpt.LAST
    state = None
    if resume:
        if not last.is_file():
            raise GanProbeError(f"resume: no checkpoint at {last}", param="resume")
        state = ckpt.load_checkpoint(last)
        if state["opt_g"] is None or state["opt_d"] is None:
            raise GanProbeError(f"{last} holds no optimizer state (a release export): it cannot be resumed")
        saved_world = saved_world_size(state, run_dir)
        if saved_world is not None and saved_world != world:
            raise GanProbeError(
                f"resume: {last} was trained by {saved_world} process(es), and {world} are running now; the data "
                f"order, epoch position and effective batch depend on that number, so resume it with "
                f"{saved_world} (torchrun --nproc_per_node {saved_world}, or no torchrun for 1)", param="resume")
        saved = TrainConfig.from_dict(state["train"])
        for name in RUN_IDENTITY:
            setattr(cfg, name, getattr(saved, name))
    elif last.exists():
        raise GanProbeError(f"out {run_dir} already holds a run; continue it with resume=True or choose another "
                            "folder", param="out", mentions=("resume",))
    if run_dir.exists() and not run_dir.is_dir():
        raise GanProbeError(f"out {run_dir} is a file, not a folder", param="out")
    cfg.validate()
    return state


def saved_world_size(state: dict[str, Any], run_dir: Path) -> int | None:
    """The number of processes that trained a checkpoint: stored in it, or (checkpoints older
    than that field) in the run's config.json; None when neither says."""
    if state.get("world_size") is not None:
        return int(state["world_size"])
    try:
        return int(json.loads((run_dir / "config.json").read_text())["world_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class Nets:
    """The two networks and their optimizers (G and D DDP-wrapped when several processes train)."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def build_nets(model_cfg: DCGANConfig, cfg: TrainConfig, device: torch.device,
               state: dict[str, Any] | None = None, world: int = 1) -> tuple[Nets, int]:
    """G, D and their Adam optimizers, initialised from torch's current RNG or restored from a
    checkpoint ``state`` (weights, optimizers, step, RNG); returns them and the step to start at."""
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    G = Generator(model_cfg).to(device, memory_format=memory_format)
    D = Discriminator(model_cfg).activations_in_place().to(device, memory_format=memory_format)
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
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        G = nn.parallel.DistributedDataParallel(G, device_ids=ids)
        D = nn.parallel.DistributedDataParallel(D, device_ids=ids)
    return Nets(G, D, opt_g, opt_d), step


def step_noise(model_cfg: DCGANConfig, n: int, seed: int, rank: int, step: int,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """The z of ``step`` on ``rank``: a function of (seed, rank, step) alone, so a resumed run draws
    what the uninterrupted one would have."""
    return sample_z(model_cfg, n, torch.Generator().manual_seed(derive_seed(seed, rank, step)), device)


@dataclass
class StepResult:
    """One step's losses and D's logits on the real batch, the fakes before the D update and after."""

    loss_d: torch.Tensor
    loss_g: torch.Tensor
    out_real: torch.Tensor
    out_fake: torch.Tensor
    out_g: torch.Tensor


def train_step(nets: Nets, real: torch.Tensor, z: torch.Tensor,
               amp: contextlib.AbstractContextManager | None = None) -> StepResult:
    """One DCGAN step as in pytorch/examples: a D update on ``real`` and G(z), then a G update
    with the non-saturating loss."""
    amp = amp or contextlib.nullcontext()
    b = real.size(0)
    ones = torch.ones(b, device=real.device)
    zeros = torch.zeros(b, device=real.device)
    # (1) D: maximise log D(x) + log(1 - D(G(z)))
    with amp:
        fake = nets.G(z)
        out_real = nets.D(real)
        out_fake = nets.D(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(out_real.float(), ones)
                  + F.binary_cross_entropy_with_logits(out_fake.float(), zeros))
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    nets.opt_d.step()
    # (2) G: maximise log D(G(z)) (the non-saturating loss). Only G's weights get gradients: the loss
    # still flows back through D, but D's weight gradients (which pytorch/examples computes and the next
    # D update discards) are skipped, and under DDP not all-reduced. G's gradients are the same bits.
    nets.opt_g.zero_grad(set_to_none=True)
    with _local_gradients(nets.D):
        with amp:
            out_g = nets.D(fake)
            loss_g = F.binary_cross_entropy_with_logits(out_g.float(), ones)
        loss_g.backward(inputs=list(nets.G.parameters()))
    nets.opt_g.step()
    return StepResult(loss_d, loss_g, out_real, out_fake, out_g)


def _local_gradients(net: nn.Module) -> contextlib.AbstractContextManager:
    """DDP's ``no_sync`` for a net whose weights get no gradient in this backward (its reducer would
    otherwise wait for them); nothing for a plain module."""
    return net.no_sync() if isinstance(net, nn.parallel.DistributedDataParallel) else contextlib.nullcontext()


def step_stats(step: int, steps_per_epoch: int, r: StepResult, img_per_s: float) -> dict[str, float]:
    """One log.jsonl record (also what the progress bar shows)."""
    return {
        "step": step, "epoch": step / steps_per_epoch,
        "loss_d": r.loss_d.item(), "loss_g": r.loss_g.item(),
        "d_x": torch.sigmoid(r.out_real.float()).mean().item(),
        "d_g_z1": torch.sigmoid(r.out_fake.float()).mean().item(),
        "d_g_z2": torch.sigmoid(r.out_g.float()).mean().item(),
        "img_per_s": img_per_s,
    }


class RunWriter:
    """Everything a run writes into RUN_DIR; a no-op unless ``enabled`` (rank 0 alone writes).

    Sample grids are rendered on the calling thread (G as it is at that step) and encoded and
    written by one background thread, so PNG encoding (and torchvision's import, on the first
    grid) overlap training; :meth:`close` waits for them and raises the first error."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.run_dir = run_dir
        self.enabled = enabled
        self._log = None
        self._pending: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None
        if enabled:
            (run_dir / "samples").mkdir(parents=True, exist_ok=True)
            self._log = (run_dir / "log.jsonl").open("a")

    def config(self, payload: dict[str, Any]) -> None:
        if self.enabled:
            atomic_write_text(self.run_dir / "config.json", json.dumps(payload, indent=2))

    def log(self, stats: dict[str, float]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(stats) + "\n")
            self._log.flush()

    def grid(self, images: torch.Tensor, name: str) -> None:
        """``images`` (in [-1, 1]) as ``samples/NAME``, written in the background."""
        if not self.enabled:
            return
        self._raise_failed()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gan-probe-grids")
        images = images.detach().float().cpu().clone()
        self._pending.append(self._pool.submit(save_grid, images, self.run_dir / "samples" / name, nrow=8))

    def samples(self, G: nn.Module, fixed_z: torch.Tensor, name: str) -> None:
        """The grid of G(fixed z), G in eval mode."""
        if not self.enabled:
            return
        g = ckpt._unwrap(G)
        g.eval()
        with torch.inference_mode():
            images = g(fixed_z)
        g.train()
        self.grid(images, name)

    def checkpoint(self, nets: Nets, *, model: DCGANConfig, train: dict[str, Any], step: int, epoch: int,
                   world: int = 1, name: str = ckpt.LAST, extra: dict[str, Any] | None = None) -> None:
        """``checkpoints/NAME`` (``last.pt``), atomically: weights, optimizers, step, torch's RNG state,
        the number of processes (``world``) and any ``extra`` entries (``best.pt``'s ``eval``)."""
        if self.enabled:
            state = ckpt.make_state(model=model, train=train, G=nets.G, D=nets.D, opt_g=nets.opt_g, opt_d=nets.opt_d,
                                    step=step, epoch=epoch, rng={"torch": torch.get_rng_state()}, world_size=world)
            ckpt.save_checkpoint(ckpt.checkpoint_dir(self.run_dir) / name, {**state, **(extra or {})})

    def _raise_failed(self) -> None:
        for f in [f for f in self._pending if f.done()]:
            self._pending.remove(f)
            f.result()

    def close(self) -> None:
        """Wait for the grids still being written; close the log. Raises a grid's error."""
        try:
            for f in self._pending:
                f.result()
        finally:
            self._pending = []
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._log is not None:
                self._log.close()
                self._log = None


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a run; returns RUN_DIR. On SIGTERM or SIGUSR1 (from the main thread) it
    finishes the step in flight, writes the checkpoint and raises :class:`Preempted`."""
    d = init_distributed(cfg.device)
    try:
        with training_determinism(d.device, cfg.deterministic):
            return _train(cfg, resume, progress, d)
    finally:
        if d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, resume: bool, show_progress: bool, d: Dist) -> Path:
    run_dir = Path(cfg.out)
    state = prepare_run(cfg, resume, d.world)
    device = d.device
    model_cfg = DCGANConfig.from_dict(state["model"]) if state else cfg.build_model_config()
    cfg.model_config = model_cfg.to_dict()
    evaluator = make_evaluator(cfg, model_cfg, d, run_dir, resume,  # its options checked before any write
                               progress=show_progress and d.main)

    torch.manual_seed(cfg.seed)
    dataset = load_dataset(cfg.dataset, model_cfg.image_size, model_cfg.channels,
                           cfg.data_root or None, cfg.download)
    batches = _Batches(dataset, cfg, d, device)
    per_epoch = batches.steps_per_epoch
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * per_epoch

    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    amp = training_autocast(device, cfg.amp)
    nets, step = build_nets(model_cfg, cfg, device, state, d.world)

    out = RunWriter(run_dir, enabled=d.main)
    out.config({"train": cfg.to_dict(), "model": model_cfg.to_dict(), "world_size": d.world,
                "device": str(device), "autocast": "bfloat16" if cfg.amp and bf16_autocast_ok(device) else None})
    fixed_z = sample_z(model_cfg, N_FIXED, torch.Generator().manual_seed(derive_seed(cfg.seed, 0xF1ED)), device)
    bar = TrainingBar(total_steps, step, show=show_progress and d.main)
    t_last, n_last = time.perf_counter(), 0
    stopped: str | None = None  # the signal that preempted the run

    def save(eval_pending: bool = False) -> None:
        """last.pt at ``step``; ``eval_pending``: the evaluation due at this step did not run (a stop
        signal came first or interrupted it), so a resumed run does it before training on."""
        out.checkpoint(nets, model=model_cfg, train=cfg.to_dict(), step=step, epoch=step // per_epoch,
                       world=d.world, extra={EVAL_PENDING: step} if eval_pending else None)

    def evaluate() -> str | None:
        """The evaluation at ``step``, its line under the bar; a stop signal during it abandons it
        between batches: the checkpoint marks it pending and the signal's name is returned."""
        nonlocal t_last
        t_eval = time.perf_counter()
        record = evaluator.evaluate(nets, step, out, epoch=step / per_epoch, train=cfg.to_dict(), world=d.world,
                                    stop=lambda: _stop_requested(stop, d))
        t_last += time.perf_counter() - t_eval  # img/s counts training time only
        if record is None:
            save(eval_pending=True)
            return _stop_requested(stop, d)
        bar.note(eval_summary(record))
        return None

    with stop_signals() as stop, _closing(bar, out):
        if evaluator is not None and state and state.get(EVAL_PENDING) == step:
            stopped = evaluate()  # the evaluation a stop signal abandoned before this run was resumed
        while step < total_steps and stopped is None:
            for real in batches.epoch(*divmod(step, per_epoch)):
                if step == 0:
                    out.grid(real[:N_FIXED], "real.png")
                real = real.to(device, non_blocking=True, memory_format=memory_format)
                z = step_noise(model_cfg, real.size(0), cfg.seed, d.rank, step, device)
                result = train_step(nets, real, z, amp)
                step += 1
                n_last += real.size(0) * d.world
                if step % cfg.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    stats = step_stats(step, per_epoch, result, n_last / max(now - t_last, 1e-9))
                    t_last, n_last = now, 0
                    out.log(stats)
                    bar.update(step, stats)
                if step % per_epoch == 0:
                    out.samples(nets.G, fixed_z, f"epoch_{step // per_epoch:03d}.png")
                stopped = _stop_requested(stop, d)
                eval_due = evaluator is not None and evaluator.due(step, total_steps)
                if step % cfg.checkpoint_every == 0 or step == total_steps or stopped:
                    save(eval_pending=bool(stopped) and eval_due)
                if eval_due and not stopped:
                    stopped = evaluate()
                if step >= total_steps or stopped:
                    break
        if step % per_epoch != 0 and not stopped:
            out.samples(nets.G, fixed_z, f"step_{step:07d}.png")
        if stopped:
            bar.update(step)  # the bar ends at the step the checkpoint holds, as the message says
    if stopped:
        raise Preempted(stopped, step, str(ckpt.checkpoint_dir(run_dir) / ckpt.LAST))
    return run_dir


@contextlib.contextmanager
def _closing(bar: TrainingBar, out: RunWriter):
    try:
        yield
    finally:
        bar.close()
        out.close()


def _stop_requested(stop, d: Dist) -> str | None:
    """The stop signal's name once any process got one (all processes agree, so all stop at the same step)."""
    if d.world == 1:
        return stop.signal_name
    return (stop.signal_name or "SIGTERM") if any_across(bool(stop), d) else None


def run_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """`gan-probe info`: what a checkpoint holds (no weights); a model gan-probe did not train (a
    card, a TorchScript file, a StyleGAN pickle): :func:`gan_probe.models.sources.describe_model`."""
    from gan_probe.models.sources import describe_model, is_foreign

    if is_foreign(run_dir):
        return describe_model(run_dir)
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
        "world_size": state.get("world_size"),
        "d_feature_dim": model.d_feature_dim,
        "model": model.to_dict(),
        "train": train_cfg,
        "parameters": {
            "G": sum(p.numel() for p in Generator(model).parameters()),
            "D": sum(p.numel() for p in Discriminator(model).parameters()),
        },
    }
