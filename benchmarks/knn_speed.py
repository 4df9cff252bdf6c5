"""Exact k-NN speed: gan-probe's blocked search vs scikit-learn brute force vs a bare loop.

    python benchmarks/knn_speed.py                      # 10k queries x 50k points x 2048-d, 5-NN
    python benchmarks/knn_speed.py --nq 2000 --np 10000 # smaller
    python benchmarks/knn_speed.py --device cuda        # gan-probe and the bare loops on a GPU
    python benchmarks/knn_speed.py --candidates float32 # gan-probe without its bfloat16 pass

Searches run side by side in one process, on the same float32 data and the
same number of threads:

- ``gan-probe``: :func:`gan_probe.knn.knn` (bfloat16 matmul candidates on a CPU with
  bfloat16 units, float32 elsewhere; float64 re-ranking; exactness check);
- ``sklearn``: ``NearestNeighbors(algorithm="brute").fit(points).kneighbors(queries)``;
- ``bare float32 loop``: blocked ``||x||^2 - 2xy + ||y||^2`` (one ``addmm``) + ``topk``
  with nothing else (no re-ranking, no exactness check);
- ``bare bfloat16 loop``: the same loop with every operand in bfloat16, when the CPU has
  bfloat16 units: the floor for gan-probe's bfloat16 pass (its answers are not exact).

Prints the seconds of each, the ratios, and how many query rows' neighbour lists
differ from gan-probe's (ties aside, exact searches agree).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gan_probe.knn import CANDIDATE_PRECISIONS, auto_block_size, bf16_matmul_is_fast, knn  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, machine_info  # noqa: E402  (benchmarks/machine.py: CPU, ISA, torch build)


def bare_loop(q: torch.Tensor, p: torch.Tensor, k: int, block_size: int,
              dtype: torch.dtype = torch.float32) -> np.ndarray:
    q, p = q.to(dtype), p.to(dtype)
    pn = (p * p).sum(1)
    out = []
    for s in range(0, len(q), block_size):
        qb = q[s:s + block_size]
        d2 = torch.addmm(pn.unsqueeze(0), qb, p.T, alpha=-2.0).add_((qb * qb).sum(1, keepdim=True))
        out.append(torch.topk(d2, k, dim=1, largest=False, sorted=True).indices.cpu())
    if q.is_cuda:
        torch.cuda.synchronize()
    return torch.cat(out).numpy()


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nq", type=int, default=10_000, help="queries (default 10000)")
    ap.add_argument("--np", dest="n_points", type=int, default=50_000, help="points (default 50000)")
    ap.add_argument("--dim", type=int, default=2048, help="dimension (default 2048)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="device for gan-probe and the bare loop (sklearn is CPU)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and sklearn threads")
    ap.add_argument("--block-size", type=int, default=0, help="query rows per block (0: gan-probe's default)")
    ap.add_argument("--candidates", default="auto", choices=CANDIDATE_PRECISIONS,
                    help="gan-probe's candidate pass (default auto)")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    # Inception-like non-negative features (mean-pooled ReLU outputs)
    points = np.abs(rng.normal(size=(a.n_points, a.dim))).astype(np.float32)
    queries = np.abs(rng.normal(size=(a.nq, a.dim))).astype(np.float32)
    bs = a.block_size or auto_block_size(a.n_points)
    dev = torch.device(a.device)

    bf16 = bf16_matmul_is_fast(dev)
    res = {"nq": a.nq, "np": a.n_points, "dim": a.dim, "k": a.k, "threads": a.threads, "block_size": bs,
           "device": str(dev), "torch": torch.__version__, "candidates": a.candidates, "cpu_bf16_units": bf16,
           "machine": machine_info()}
    if not a.json:
        print(describe(res["machine"]), flush=True)
    qt, pt = torch.from_numpy(queries).to(dev), torch.from_numpy(points).to(dev)
    # warm-up (thread pools, BLAS dispatch, CUDA context) outside the timings
    knn(queries[:64], points[:4096], a.k, device=dev, candidates=a.candidates)
    bare_loop(qt[:64], pt[:4096], a.k, bs)
    t_ours, (d_ours, i_ours) = timed(lambda: knn(queries, points, a.k, block_size=bs, device=dev,
                                                 candidates=a.candidates))
    res["gan_probe_s"] = round(t_ours, 3)
    t_bare, i_bare = timed(lambda: bare_loop(qt, pt, a.k, bs))
    res["bare_loop_s"] = round(t_bare, 3)
    res["bare_rows_differing"] = int((i_bare != i_ours).any(1).sum())
    res["gan_probe_over_bare"] = round(t_ours / t_bare, 3)
    if bf16:
        bare_loop(qt[:64], pt[:4096], a.k, bs, torch.bfloat16)
        t_b16, i_b16 = timed(lambda: bare_loop(qt, pt, a.k, bs, torch.bfloat16))
        res["bare_bf16_loop_s"] = round(t_b16, 3)
        res["bare_bf16_rows_differing"] = int((i_b16 != i_ours).any(1).sum())
        res["gan_probe_over_bare_bf16"] = round(t_ours / t_b16, 3)
    if not a.skip_sklearn:
        from sklearn.neighbors import NearestNeighbors
        from threadpoolctl import threadpool_limits

        with threadpool_limits(a.threads):
            nn = NearestNeighbors(n_neighbors=a.k, algorithm="brute", n_jobs=a.threads)
            t_sk, (d_sk, i_sk) = timed(lambda: nn.fit(points).kneighbors(queries))
        res["sklearn_s"] = round(t_sk, 3)
        res["sklearn_rows_differing"] = int((i_sk != i_ours).any(1).sum())
        res["sklearn_over_gan_probe"] = round(t_sk / t_ours, 3)
        res["sklearn_max_abs_distance_diff"] = float(np.abs(d_sk - d_ours).max())
    if a.json:
        print(json.dumps(res))
    else:
        for key, v in res.items():
            print(f"{key:32s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
