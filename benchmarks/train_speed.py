"""Whole-process time of `gan-probe train` vs a plain pytorch/examples-style loop, in one run.

Same architecture (ngf = ndf = 64, nz = 100), data (digits at 32 px), batch and step count.
Runs alternate (peer, ours, peer, ours, ...) so both see the same machine load; the
median of each is reported, with the ratio ours / peer (goal on the CPU: <= 1.0).

    python benchmarks/train_speed.py --steps 100 --repeats 3
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(HERE / "results" / "train_speed.json"))
    a = p.parse_args()
    peer_cmd = [sys.executable, str(HERE / "examples_dcgan_loop.py"), "--steps", str(a.steps),
                "--batch-size", str(a.batch_size)]
    ours, peer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            peer.append(timed(peer_cmd))
            ours.append(timed([sys.executable, "-m", "gan_probe", "train", "--dataset", "digits",
                               "--max-steps", str(a.steps), "--batch-size", str(a.batch_size),
                               "--device", a.device, "--out", f"{tmp}/run{i}", "-q",
                               "--checkpoint-every", str(a.steps)]))
    import torch

    result = {
        "steps": a.steps, "batch_size": a.batch_size, "repeats": a.repeats, "device": a.device,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "peer_s": peer, "ours_s": ours,
        "peer_median_s": statistics.median(peer), "ours_median_s": statistics.median(ours),
    }
    result["ratio_ours_over_peer"] = result["ours_median_s"] / result["peer_median_s"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(f"pytorch/examples-style loop: {result['peer_median_s']:.1f} s (median of {a.repeats})")
    print(f"gan-probe train:             {result['ours_median_s']:.1f} s (writes config, log, grids, checkpoint)")
    print(f"ratio ours / peer:           {result['ratio_ours_over_peer']:.2f}  (goal on the CPU: <= 1.0)")


if __name__ == "__main__":
    main()
