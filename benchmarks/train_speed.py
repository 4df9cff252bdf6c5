"""Whole-process time of `gan-probe train` against two pytorch/examples-style loops, in one run.

Peers (benchmarks/examples_dcgan_loop.py): the classic loop (DataLoader with 2 workers) and the
lean one (``--in-memory``: the tensor indexed directly, nothing written). Same architecture
(ngf = ndf = 64, nz = 100), data (digits at 32 px), batch and step count; every time is a whole
process: python start-up, imports, data, training, writing. Runs are interleaved (peer, lean, ours,
peer, lean, ours, ...) so all see the same machine load; the result gives each one's median and,
for each peer, the median of the per-round ratios ours / peer (goal on the CPU: <= 1.0).

    python benchmarks/train_speed.py --steps 60 --repeats 5
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


def timed(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def cpu_info():
    """CPU model and the ISA extensions torch's CPU kernels care about (from /proc/cpuinfo, as lscpu)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu_model": model, "isa": [f for f in ISA_FLAGS if f in flags]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(HERE / "results" / "train_speed.json"))
    a = p.parse_args()
    loop = [sys.executable, str(HERE / "examples_dcgan_loop.py"), "--steps", str(a.steps),
            "--batch-size", str(a.batch_size)]
    times = {"peer": [], "lean": [], "ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            times["peer"].append(timed(loop))
            times["lean"].append(timed([*loop, "--in-memory"]))
            times["ours"].append(timed([sys.executable, "-m", "gan_probe", "train", "--dataset", "digits",
                                        "--max-steps", str(a.steps), "--batch-size", str(a.batch_size),
                                        "--device", a.device, "--out", f"{tmp}/run{i}", "-q",
                                        "--checkpoint-every", str(a.steps)]))
    import torch

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {k: statistics.median(o / t for o, t in zip(times["ours"], times[k])) for k in ("peer", "lean")}
    result = {
        "steps": a.steps, "batch_size": a.batch_size, "repeats": a.repeats, "device": a.device,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
        **cpu_info(),
        "peer_s": times["peer"], "lean_s": times["lean"], "ours_s": times["ours"],
        "peer_median_s": med["peer"], "lean_median_s": med["lean"], "ours_median_s": med["ours"],
        "ratio_ours_over_peer": ratio["peer"], "ratio_ours_over_lean": ratio["lean"],
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(f"{result['cpu_model']} ({' '.join(result['isa']) or 'no avx2'}), torch {result['torch']}, "
          f"{result['threads']} threads; medians of {a.repeats}, runs interleaved")
    print(f"pytorch/examples-style loop (DataLoader): {med['peer']:.1f} s")
    print(f"lean in-memory loop:                      {med['lean']:.1f} s")
    print(f"gan-probe train:                          {med['ours']:.1f} s (writes config, log, grids, checkpoint)")
    print(f"ratio ours / DataLoader loop:             {ratio['peer']:.3f}  (median of per-round ratios)")
    print(f"ratio ours / lean loop:                   {ratio['lean']:.3f}  (goal on the CPU: <= 1.0)")


if __name__ == "__main__":
    main()
