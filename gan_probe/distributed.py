"""Several processes under ``torchrun``: who this process is, its share of the work, and gathering.

One place for what every distributed pass needs (training, feature passes, the ``Scorer``):

- :func:`init_distributed` reads torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``),
  picks this process's device (``cuda:LOCAL_RANK`` on GPUs) and joins the process group (NCCL on
  CUDA, gloo otherwise). Without torchrun it is one process and nothing is joined.
- :func:`shard` gives rank ``r`` a contiguous block of ``range(n)``; blocks in rank order are
  ``range(n)`` again, so :func:`gather_rows` of per-rank results is the one-process result, row
  for row (sample ``i`` of seed ``s`` is the same sample whichever process draws it).
- :func:`gather_rows` concatenates every rank's rows in rank order on every rank;
  :func:`sum_across` adds arrays (float64 moments) across ranks.

Only rank 0 prints and writes (:attr:`Dist.main`). Multi-node runs use torchrun's standard
rendezvous (``--nnodes``, ``--rdzv-backend c10d --rdzv-endpoint HOST:PORT``); nothing here
depends on the number of nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from gan_probe.device import distributed_device, process_group_backend, resolve_device


@dataclass
class Dist:
    """This process's place among ``world`` processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        """Rank 0: the one process that prints and writes."""
        return self.rank == 0


def init_distributed(device_name: str = "auto") -> Dist:
    """This process's rank and device. Under torchrun (``WORLD_SIZE`` > 1) each process takes
    the device of its LOCAL_RANK (``cuda:LOCAL_RANK`` for any CUDA name) and joins the process
    group: NCCL on CUDA, gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=resolve_device(device_name))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = distributed_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(process_group_backend(device))
    return Dist(rank, world, local_rank, device)


def current() -> Dist:
    """The process group already joined (by :func:`init_distributed`), or one process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Dist()


def shard(n: int, d: Dist) -> range:
    """Rank ``d.rank``'s contiguous block of ``range(n)``; the blocks in rank order are ``range(n)``."""
    return range(n * d.rank // d.world, n * (d.rank + 1) // d.world)


def _collective_device(d: Dist) -> torch.device:
    """Where tensors must be for the group's backend (NCCL: this process's GPU; gloo: the CPU)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_rows(rows: np.ndarray, d: Dist) -> np.ndarray:
    """Every rank's ``rows`` (same trailing shape and dtype, any number of rows), concatenated in
    rank order, on every rank. One process: ``rows`` itself."""
    if d.world == 1:
        return rows
    rows = np.ascontiguousarray(rows)
    dev = _collective_device(d)
    counts = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(d.world)]
    dist.all_gather(counts, torch.tensor([rows.shape[0]], dtype=torch.int64, device=dev))
    counts = [int(c.item()) for c in counts]
    most = max(counts)
    padded = np.zeros((most, *rows.shape[1:]), dtype=rows.dtype)
    padded[: rows.shape[0]] = rows
    mine = torch.from_numpy(padded).to(dev)
    parts = [torch.empty_like(mine) for _ in range(d.world)]
    dist.all_gather(parts, mine)
    return np.concatenate([p[:c].cpu().numpy() for p, c in zip(parts, counts)], axis=0)


def sum_across(values: np.ndarray, d: Dist) -> np.ndarray:
    """``values`` summed over all ranks (same shape on each), in float64, on every rank."""
    if d.world == 1:
        return values
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(_collective_device(d))
    dist.all_reduce(t)
    return t.cpu().numpy()


def any_across(flag: bool, d: Dist) -> bool:
    """True on every rank once it is true on any."""
    if d.world == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=_collective_device(d))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast(obj, d: Dist):
    """Rank 0's ``obj`` (any picklable object) on every rank."""
    if d.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(d: Dist) -> None:
    """Wait until every rank gets here (no-op for one process)."""
    if d.world > 1:
        dist.barrier()
