"""Can a reduced-precision candidate pass beat the float32 floor of exact kNN on this CPU?

The exact kNN search (``gan_probe/knn.py``) is one big matrix product of queries by points. With
bfloat16 units (AMX, AVX512_BF16) a bfloat16 candidate pass plus a certified bound and a float32
re-rank beats float32. On a CPU without them the question is first whether any lower precision
product is *faster* than float32 at all: if not, no candidate pass built on it can win, whatever
its bound. This script times the candidate product (``--queries`` x ``--points`` x ``--dim``, the
search's block shape) in every dtype torch offers on the CPU:

- float32 ``mm`` (MKL / oneDNN sgemm): the floor;
- bfloat16 and float16 ``mm`` (oneDNN; a slow fallback where the ISA lacks the units);
- int8 x int8 -> int32 (``torch._int_mm``, oneDNN's VNNI / AVX2 u8s8 kernels) where available,
  the only exact-arithmetic candidate (a scaled int8 code with a certified per-row error bound).

Each dtype is timed ``--repeats`` times interleaved with float32 (A B A B) in this one process, so a
ratio taken on a busy machine compares like with like. Run as on an AVX2-only CPU with

    ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/knn_precision.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def best_time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=1024)
    ap.add_argument("--points", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON results (default: benchmarks/results/knn_precision.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe, machine_info

    info = machine_info()
    print(describe(info), flush=True)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(args.queries, args.dim, generator=g)
    p = torch.randn(args.points, args.dim, generator=g)
    flop = 2 * args.queries * args.points * args.dim
    cases = {"bfloat16": (q.bfloat16(), p.bfloat16().T.contiguous().T),
             "float16": (q.half(), p.half().T.contiguous().T)}
    q8 = torch.clamp((q * 32).round(), -127, 127).to(torch.int8)
    p8 = torch.clamp((p * 32).round(), -127, 127).to(torch.int8)
    rows = []
    for name, (a, b) in [("float32", (q, p))] + list(cases.items()) + [("int8 (_int_mm)", (q8, p8))]:
        if name.startswith("int8"):
            if not hasattr(torch, "_int_mm"):
                print(f"{name:<16} not available in this torch build", flush=True)
                continue

            def lowp(a=a, b=b):
                return torch._int_mm(a, b.T)
        else:
            def lowp(a=a, b=b):
                return a @ b.T
        # a first, cheap probe on 1/16 of the points: a fallback kernel (no units for the dtype) is
        # ~100x slower than float32; time it once there instead of minutes at full size
        a_s, b_s = a, b[: max(1, len(b) // 16)]
        probe = (lambda: torch._int_mm(a_s, b_s.T)) if name.startswith("int8") else (lambda: a_s @ b_s.T)
        try:
            t_probe = best_time(probe, 1)
        except RuntimeError as e:
            print(f"{name:<16} fails: {str(e).splitlines()[0]}", flush=True)
            continue
        t32_probe = best_time(lambda: q @ p[: len(b_s)].T, 1)
        if t_probe > 8 * t32_probe:
            f_s = flop * len(b_s) / len(b)
            rows.append({"dtype": name, "seconds": t_probe, "gflops": f_s / t_probe / 1e9, "float32_seconds": t32_probe,
                         "speedup_vs_float32": t32_probe / t_probe, "shape_points": len(b_s)})
            print(f"{name:<16} {t_probe * 1e3:9.1f} ms  {f_s / t_probe / 1e9:7.2f} GFLOP/s   float32 alongside "
                  f"{t32_probe * 1e3:8.1f} ms on {len(b_s)} points: a fallback kernel, "
                  f"{t32_probe / t_probe:.3f}x float32", flush=True)
            continue
        t32, tl = float("inf"), float("inf")
        for _ in range(args.repeats):  # A B A B
            t32 = min(t32, best_time(lambda: q @ p.T, 1))
            tl = min(tl, best_time(lowp, 1))
        rows.append({"dtype": name, "seconds": tl, "gflops": flop / tl / 1e9, "float32_seconds": t32,
                     "speedup_vs_float32": t32 / tl})
        print(f"{name:<16} {tl * 1e3:9.1f} ms  {flop / tl / 1e9:7.1f} GFLOP/s   float32 alongside "
              f"{t32 * 1e3:8.1f} ms ({flop / t32 / 1e9:6.1f} GFLOP/s)   speed-up vs float32 {t32 / tl:6.2f}x",
              flush=True)
    out = Path(args.out or Path(__file__).resolve().parent / "results" / "knn_precision.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "command": " ".join(sys.argv), "shape": [args.queries, args.points,
                               args.dim], "cases": rows}, indent=1))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
