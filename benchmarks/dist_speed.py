"""The distributed feature pass on the CPU: 1 process against 2 (torchrun, gloo), same images.

    python benchmarks/dist_speed.py                     # 400 32-px PNGs, stand-in Inception weights
    python benchmarks/dist_speed.py --n 2000 --weights ~/pt_inception-2015-12-05-6726825d.pth

Each run is ``torchrun --standalone --nproc_per_node P -m gan_probe stats FOLDER --out S.npz
--no-cache`` (one Inception pass over FOLDER, nothing else), with ``OMP_NUM_THREADS`` = cores / P,
so that P processes x threads = the cores. Measured per P (1 and 2):

- wall time of the command;
- total CPU time: user + sys of every child process (the launcher and its workers:
  ``resource.getrusage(RUSAGE_CHILDREN)`` before and after);
- the same for a tiny folder (``--fixed-n`` images per process), i.e. what a run costs besides the
  pass (process start, imports, loading the weights once per process), and the pass net of it.

Goal (issue 14): total CPU time at 2 processes <= 1.1 x that at 1 (the work split costs at most
10 % over the ideal). The statistics both runs wrote are compared too (largest relative difference
of mu and sigma, and of the FID between them and a third set): the exactness figure of
docs/metrics.md. The load average is recorded: on shared cores, label the figures contended.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, machine_info  # noqa: E402  (benchmarks/machine.py: CPU, ISA, torch build)
from synthetic_images import write_images  # noqa: E402  (benchmarks/synthetic_images.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_pass(folder: Path, out: Path, nproc: int, threads: int, weights: Path, batch_size: int) -> dict:
    """One ``stats`` pass under torchrun: wall seconds, children's user + sys CPU seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "gan_probe", "stats", str(folder), "--out", str(out), "--no-cache", "--inception-weights",
           str(weights), "--device", "cpu", "--num-workers", "0", "--batch-size", str(batch_size), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"nproc": nproc, "threads_per_process": threads, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="Images in the folder.")
    ap.add_argument("--size", type=int, default=32, help="Image side (pixels).")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--fixed-n", type=int, default=2, help="Images per process of the start-up-only run.")
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)), help="Cores to fill.")
    ap.add_argument("--weights", type=Path, help="pytorch-fid's Inception weights (default: a seeded stand-in).")
    ap.add_argument("--out", type=Path, help="Results JSON (default: benchmarks/results/dist_speed[_contended].json).")
    args = ap.parse_args()

    info = machine_info()
    print(describe(info), flush=True)
    contended = info["load_average_1min"] >= 0.5 * info["cores"] + 0.5
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = args.weights
        if weights is None:
            from gan_probe.features.inception import write_standin_weights

            weights = write_standin_weights(tmp / "standin.pth")
        folder = write_images(tmp / "images", args.n, 0, args.size)
        rows = []
        for nproc in (1, 2):
            threads = max(1, args.cores // nproc)
            tiny = write_images(tmp / f"tiny{nproc}", args.fixed_n * nproc, 1, args.size)
            fixed = run_pass(tiny, tmp / f"tiny{nproc}.npz", nproc, threads, weights, args.batch_size)
            full = run_pass(folder, tmp / f"stats{nproc}.npz", nproc, threads, weights, args.batch_size)
            row = {**full, "fixed_wall_s": fixed["wall_s"], "fixed_cpu_s": fixed["cpu_s"],
                   "pass_cpu_s": round(full["cpu_s"] - fixed["cpu_s"], 2),
                   "pass_wall_s": round(full["wall_s"] - fixed["wall_s"], 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        from gan_probe.metrics.fid import statistics_to_fid

        one, two = np.load(tmp / "stats1.npz"), np.load(tmp / "stats2.npz")
        other = np.load(tmp / "tiny2.npz")

        def rel(a, b):
            return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))

        fid1 = statistics_to_fid(one["mu"], one["sigma"], other["mu"], other["sigma"])
        fid2 = statistics_to_fid(two["mu"], two["sigma"], other["mu"], other["sigma"])
        exact = {"mu_max_rel_diff": rel(one["mu"], two["mu"]), "sigma_max_rel_diff": rel(one["sigma"], two["sigma"]),
                 "fid_1proc": fid1, "fid_2proc": fid2, "fid_rel_diff": abs(fid1 - fid2) / abs(fid1)}
    ratio = rows[1]["cpu_s"] / rows[0]["cpu_s"]
    net = rows[1]["pass_cpu_s"] / rows[0]["pass_cpu_s"] if rows[0]["pass_cpu_s"] > 0 else None
    result = {"benchmark": "dist_speed", "machine": info, "contended": contended, "n": args.n, "size": args.size,
              "batch_size": args.batch_size, "weights": "stand-in" if args.weights is None else str(args.weights),
              "runs": rows, "cpu_ratio_2_over_1": round(ratio, 3),
              "pass_cpu_ratio_2_over_1": None if net is None else round(net, 3),
              "wall_speedup_2_over_1": round(rows[0]["wall_s"] / rows[1]["wall_s"], 3),
              "goal": "cpu_ratio_2_over_1 <= 1.1", "goal_met": ratio <= 1.1, "exactness": exact,
              "command": " ".join([Path(sys.executable).name, *sys.argv])}
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "runs")}, indent=1))
    out = args.out or ROOT / "benchmarks" / "results" / f"dist_speed{'_contended' if contended else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
