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
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, TypeVar

import numpy as np

from gan_probe.errors import GanProbeError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass
class Dist:
    """This process's place among ``world`` processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: "torch.device" = field(default_factory=lambda: _cpu())

    @property
    def main(self) -> bool:
        """Rank 0: the one process that prints and writes."""
        return self.rank == 0


def _cpu():
    import torch

    return torch.device("cpu")


def launched_world() -> int:
    """How many processes torchrun started (``WORLD_SIZE``; 1 without torchrun). Imports nothing."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """True on rank 0 and without torchrun: the process that prints and writes. Reads the joined
    group when there is one, else torchrun's ``RANK``; imports nothing (torch-free callers use it)."""
    tdist = sys.modules.get("torch.distributed")
    if tdist is not None and tdist.is_available() and tdist.is_initialized():
        return tdist.get_rank() == 0
    return int(os.environ.get("RANK", "0") or 0) == 0


def init_distributed(device_name: str = "auto") -> Dist:
    """This process's rank and device. Under torchrun (``WORLD_SIZE`` > 1) each process takes
    the device of its LOCAL_RANK (``cuda:LOCAL_RANK`` for any CUDA name) and joins the process
    group: NCCL on CUDA, gloo otherwise."""
    import torch
    import torch.distributed as dist

    from gan_probe.device import distributed_device, process_group_backend, resolve_device

    world = launched_world()
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
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Dist()


def shard(n: int, d: Dist, block: int = 1) -> range:
    """Rank ``d.rank``'s contiguous block of ``range(n)``; the blocks in rank order are ``range(n)``.

    ``block``: shard whole blocks of that many rows (the last one may be short), so every row is
    computed in the very batch it has in one process (``block`` = the batch size): a batch-size
    dependent float32 kernel then gives the same rows bit for bit."""
    blocks = -(-n // block) if n > 0 else 0
    lo, hi = blocks * d.rank // d.world, blocks * (d.rank + 1) // d.world
    return range(min(n, lo * block), min(n, hi * block))


def _collective_device(d: Dist) -> "torch.device":
    """Where tensors must be for the group's backend (NCCL: this process's GPU; gloo: the CPU)."""
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_rows(rows: np.ndarray, d: Dist) -> np.ndarray:
    """Every rank's ``rows`` (same trailing shape and dtype, any number of rows), concatenated in
    rank order, on every rank. One process: ``rows`` itself."""
    import torch
    import torch.distributed as dist

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
    import torch
    import torch.distributed as dist

    if d.world == 1:
        return values
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(_collective_device(d))
    dist.all_reduce(t)
    return t.cpu().numpy()


def any_across(flag: bool, d: Dist) -> bool:
    """True on every rank once it is true on any."""
    import torch
    import torch.distributed as dist

    if d.world == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=_collective_device(d))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast(obj, d: Dist):
    """Rank 0's ``obj`` (any picklable object) on every rank."""
    import torch.distributed as dist

    if d.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(d: Dist) -> None:
    """Wait until every rank gets here (no-op for one process)."""
    import torch.distributed as dist

    if d.world > 1:
        dist.barrier()


def gather_objects(obj, d: Dist) -> list:
    """Every rank's ``obj`` (any picklable object), in rank order, on every rank."""
    if d.world == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


class ErrorOnAnotherRank(GanProbeError):
    """The :class:`GanProbeError` one rank raised, raised on every rank (``rank``: where it came
    from). The CLI prints it once, on rank 0."""

    def __init__(self, message: str, *, param: str | None = None, rank: int = 0):
        super().__init__(message, param=param)
        self.rank = rank


def on_every_rank(fn: Callable[[], T], d: Dist) -> T:
    """``fn()`` on this rank; when it raises a :class:`GanProbeError` on any rank (a corrupt image
    in one rank's shard), every rank raises the lowest such rank's error, so no rank waits forever
    in a later collective for one that has stopped. One process: ``fn()`` itself."""
    if d.world == 1:
        return fn()
    result, mine = None, None
    try:
        result = fn()
    except GanProbeError as e:
        mine = (str(e), e.param)
    errors = gather_objects(mine, d)
    for rank, err in enumerate(errors):
        if err is not None:
            raise ErrorOnAnotherRank(err[0], param=err[1], rank=rank)
    return result
