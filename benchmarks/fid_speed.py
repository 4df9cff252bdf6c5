"""gan-probe fid vs the pytorch-fid CLI, side by side in one run, on the same folders and weights.

    python benchmarks/fid_speed.py                      # 2 x 200 32-px PNGs, stand-in weights
    python benchmarks/fid_speed.py --n 1000 --weights ~/pt_inception-2015-12-05-6726825d.pth

Measures (wall time of each command as a user runs it, process start included):
  1. cold:   pytorch-fid REAL FAKE        vs  gan-probe fid REAL FAKE        (empty statistics cache)
  2. repeat: pytorch-fid REAL FAKE2       vs  gan-probe fid FAKE2 REAL       (REAL's statistics cached)
  3. npz:    pytorch-fid A.npz B.npz      vs  gan-probe fid A.npz B.npz      (2048-d, full-rank statistics
             of 5,000 synthetic samples each, written in pytorch-fid's format)
and the agreement of the values. pytorch-fid loads its weights from a URL through torch hub; it is
pointed at the same file by placing it in a temporary ``$TORCH_HOME/hub/checkpoints/``.
Without --weights a seeded stand-in weights file is built (same architecture and keys; FID values
are then not comparable with published ones, but the two tools still see identical weights).
The load average is recorded at the start and end: on shared cores, compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def write_full_rank_stats(path: Path, seed: int, n: int = 5000, d: int = 2048) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) @ (np.eye(d) + 0.05 * rng.standard_normal((d, d))) + 0.1 * seed
    np.savez_compressed(path, mu=x.mean(0), sigma=np.cov(x, rowvar=False))  # pytorch-fid's save_fid_stats
    return path


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return wall, r.stdout


def pytorch_fid_value(stdout: str) -> float:
    m = re.search(r"FID:\s+([-0-9.eE+naif]+)", stdout)
    if not m:
        raise SystemExit(f"no FID in pytorch-fid's output: {stdout[-500:]}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="images per folder")
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--weights", type=Path, help="the real pt_inception-2015-12-05-6726825d.pth (default: stand-in)")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", type=Path, help="where to put images, caches, weights (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fid_speed.json")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="fid-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    real = write_images(work / "real", args.n, 0, args.size)
    fake = write_images(work / "fake", args.n, 1, args.size)
    fake2 = write_images(work / "fake2", args.n, 2, args.size)
    weights = args.weights or (work / "standin.pth")
    if not weights.is_file():
        print(f"building stand-in weights at {weights} ...", flush=True)
        from gan_probe.features.inception import write_standin_weights

        write_standin_weights(weights)
    hub = work / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True, exist_ok=True)
    if not (hub / WEIGHTS_NAME).exists():
        (hub / WEIGHTS_NAME).symlink_to(weights.resolve())
    env = dict(os.environ, TORCH_HOME=str(work / "torch-home"), GAN_PROBE_CACHE=str(work / "gp-cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for f in (work / "gp-cache").rglob("*.npz") if (work / "gp-cache").exists() else []:
        f.unlink()
    py = sys.executable
    common = ["--device", args.device, "--batch-size", str(args.batch_size)]
    pf = [py, "-m", "pytorch_fid", "--dims", "2048"] + common
    gp = [py, "-m", "gan_probe", "fid", "--json", "--inception-weights", str(weights)] + common
    res: dict = {"n_per_folder": args.n, "image_size": args.size, "weights": "given" if args.weights else "stand-in",
                 "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()[0], "machine": machine_info()}
    print(describe(res["machine"]), flush=True)

    print("1/3 cold run ...", flush=True)
    t_pf, out = timed(pf + [str(real), str(fake)], env)
    fid_pf = pytorch_fid_value(out)
    t_gp, out = timed(gp + [str(real), str(fake), "--save-stats", str(work / "real.npz")], env)
    fid_gp = json.loads(out)["fid"]
    res["cold"] = {"pytorch_fid_s": t_pf, "gan_probe_s": t_gp, "ratio": t_gp / t_pf,
                   "fid_pytorch_fid": fid_pf, "fid_gan_probe": fid_gp, "rel_diff": abs(fid_gp - fid_pf) / fid_pf}

    print("2/3 repeat run, real side cached ...", flush=True)
    t_pf2, out = timed(pf + [str(real), str(fake2)], env)
    fid_pf2 = pytorch_fid_value(out)
    t_gp2, out = timed(gp + [str(fake2), str(real)], env)
    r2 = json.loads(out)
    assert r2["ref"]["cached"] and not r2["gen"]["cached"], r2
    res["repeat"] = {"pytorch_fid_s": t_pf2, "gan_probe_s": t_gp2, "ratio": t_gp2 / t_pf2,
                     "fid_pytorch_fid": fid_pf2, "fid_gan_probe": r2["fid"],
                     "rel_diff": abs(r2["fid"] - fid_pf2) / fid_pf2}

    print("3/3 FID from two 2048-d .npz files ...", flush=True)
    a, b = write_full_rank_stats(work / "a.npz", 1), write_full_rank_stats(work / "b.npz", 2)
    t_pf3, out = timed(pf + [str(a), str(b)], env)
    fid_pf3 = pytorch_fid_value(out)
    t_gp3, out = timed(gp + [str(a), str(b)], env)
    fid_gp3 = json.loads(out)["fid"]
    res["npz"] = {"pytorch_fid_s": t_pf3, "gan_probe_s": t_gp3, "ratio": t_gp3 / t_pf3,
                  "fid_pytorch_fid": fid_pf3, "fid_gan_probe": fid_gp3, "rel_diff": abs(fid_gp3 - fid_pf3) / fid_pf3}
    res["loadavg_end"] = os.getloadavg()[0]

    print(f"\n{'':8} {'pytorch-fid':>12} {'gan-probe':>10} {'ratio':>7}   {'FID pf':>12} {'FID gp':>12} {'rel diff':>9}")
    for k in ("cold", "repeat", "npz"):
        r = res[k]
        print(f"{k:8} {r['pytorch_fid_s']:11.1f}s {r['gan_probe_s']:9.1f}s {r['ratio']:6.2f}x   "
              f"{r['fid_pytorch_fid']:12.6f} {r['fid_gan_probe']:12.6f} {r['rel_diff']:9.1e}")
    busy = res["loadavg_start"] > 0.5 * (os.cpu_count() or 1) + 0.5  # more than this benchmark's own work
    print(f"(load average {res['loadavg_start']:.1f} -> {res['loadavg_end']:.1f} on {os.cpu_count()} cores"
          + (": other jobs were running, compare ratios, not seconds)" if busy else ")"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
