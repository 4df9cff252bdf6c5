"""gan_probe.distributed: shards cover range(n) in order, and gathers rebuild the one-process rows (2 gloo processes)."""

import numpy as np
import pytest
import torch.multiprocessing as mp

from gan_probe.distributed import Dist, gather_rows, shard, sum_across


@pytest.mark.parametrize("n,world", [(0, 2), (1, 2), (7, 2), (10, 3), (5, 8)])
def test_shards_in_rank_order_are_range_n(n, world):
    blocks = [shard(n, Dist(rank=r, world=world)) for r in range(world)]
    assert [i for b in blocks for i in b] == list(range(n))
    assert max(len(b) for b in blocks) - min(len(b) for b in blocks) <= 1


def _worker(rank, world, init_file, out_file):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    d = Dist(rank, world)
    rows = np.arange(7 * 3, dtype=np.float16).reshape(7, 3)[list(shard(7, d))]
    gathered = gather_rows(rows, d)
    labels = gather_rows(np.arange(7, dtype=np.uint8)[list(shard(7, d))], d)
    total = sum_across(np.array([rank + 1.0, 0.5]), d)
    if rank == 1:
        np.savez(out_file, gathered=gathered, labels=labels, total=total)
    dist.destroy_process_group()


def test_two_gloo_processes_gather_the_one_process_rows(tmp_path):
    out = tmp_path / "out.npz"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    got = np.load(out)
    np.testing.assert_array_equal(got["gathered"], np.arange(21, dtype=np.float16).reshape(7, 3))
    assert got["gathered"].dtype == np.float16
    np.testing.assert_array_equal(got["labels"], np.arange(7, dtype=np.uint8))
    np.testing.assert_array_equal(got["total"], [3.0, 1.0])


def test_one_process_gathers_nothing():
    rows = np.ones((3, 2))
    assert gather_rows(rows, Dist()) is rows
