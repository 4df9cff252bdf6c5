"""The Scorer's cost per update against a bare Inception forward on the same batch.

    python benchmarks/scorer_speed.py                          # CPU, batches of 50 32-px images, stand-in weights
    python benchmarks/scorer_speed.py --device cuda --repeats 30 --weights ~/pt_inception-2015-12-05-6726825d.pth

Per batch of G-like float images in [-1, 1]:
  bare:   InceptionExtractor(to_inception_input(uint8 batch)): pytorch-fid's preprocessing and the network,
          pool3 features to the CPU (what any FID loop must do per batch);
  scorer: Scorer.update(float batch) with --metrics (default fid: the running float64 mean/covariance;
          also fid,kid,is to keep features and logits): quantisation to uint8 as `gan-probe sample`
          writes PNGs, the same preprocessing and network, and what the metrics keep.
Calls are interleaved (bare, scorer, bare, ...) after --warmup calls of each, so both see the same load;
the ratio of medians is the figure (goal: scorer within 1.05x of bare). Without --weights the real file is
used if found where `score` looks (torch hub cache, $GAN_PROBE_INCEPTION_WEIGHTS), else a seeded stand-in
with the real architecture is built (same cost; its numbers mean nothing) and the output says so.
Results: benchmarks/results/scorer_speed[_contended].json, with the machine (benchmarks/machine.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def find_weights(path: Path | None, tmp: Path) -> tuple[Path, str]:
    from gan_probe.errors import GanProbeError
    from gan_probe.features.inception import find_inception_weights, is_reference_weights, write_standin_weights

    if path is not None:
        return path, "given"
    try:
        w = find_inception_weights()
        return w, "found" + ("" if is_reference_weights(w) else " (not pytorch-fid's file)")
    except GanProbeError:
        return write_standin_weights(tmp / "standin-inception.pth"), "stand-in (real architecture, random weights)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--size", type=int, default=32, help="image side (G's output size)")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--metrics", default="fid", help="the Scorer's metrics (fid: statistics only; fid,kid,is: "
                                                     "features and logits kept too)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--out", type=Path, help="results JSON (default: benchmarks/results/scorer_speed[_contended].json)")
    args = ap.parse_args()

    import torch

    from gan_probe import Scorer
    from gan_probe.device import resolve_device
    from gan_probe.features.inception import InceptionExtractor, to_inception_input
    from gan_probe.metrics.score import ScoreOptions
    from gan_probe.sampling import quantize

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    print(describe(info))
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        weights, how = find_weights(args.weights, Path(tmp))
        print(f"# weights: {weights} ({how})")
        bare_net = InceptionExtractor(weights, device)
        needs_ref = any(m.strip() not in ("is",) for m in args.metrics.split(","))
        ref = None
        if needs_ref:  # a tiny reference; its pass is not timed
            import numpy as np

            ref = Path(tmp) / "ref.npy"
            np.save(ref, np.random.default_rng(1).integers(0, 256, (12, args.size, args.size, 3), dtype=np.uint8))
        scorer = Scorer(ref=str(ref) if ref else None, metrics=args.metrics,
                        options=ScoreOptions(weights=weights, device=str(device), progress=False, cache=False,
                                             num_workers=0))
        g = torch.Generator().manual_seed(0)
        batch = (torch.rand(args.batch_size, args.channels, args.size, args.size, generator=g) * 2 - 1).to(device)

        def sync():
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        def bare():
            with torch.inference_mode():
                u8 = quantize(batch)
                u8 = u8.expand(-1, 3, -1, -1) if u8.shape[1] == 1 else u8
                bare_net(to_inception_input(u8))

        def update():
            scorer.update(batch)

        times: dict[str, list[float]] = {"bare": [], "scorer": []}
        for i in range(args.warmup + args.repeats):
            for name, fn in (("bare", bare), ("scorer", update)):
                sync()
                t = time.perf_counter()
                fn()
                sync()
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - t)
        scorer.compute()  # the updates were real: the result is computable
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["scorer"] / med["bare"]
    contended = info["load_average_1min"] >= 0.5 * info["cores"] + 0.5
    result = {"benchmark": "scorer_speed", "device": str(device), "batch_size": args.batch_size,
              "image": [args.channels, args.size, args.size], "metrics": args.metrics, "repeats": args.repeats,
              "weights": how, "median_s": med, "times_s": times, "ratio_scorer_over_bare": ratio,
              "goal": "ratio <= 1.05", "meets_goal": ratio <= 1.05, "contended": contended,
              "machine": info, "load_average_1min_end": __import__("os").getloadavg()[0],
              "command": " ".join(["python", "benchmarks/scorer_speed.py", *sys.argv[1:]])}
    print(f"bare Inception forward: {med['bare'] * 1000:.1f} ms / batch of {args.batch_size}; "
          f"Scorer.update ({args.metrics}): {med['scorer'] * 1000:.1f} ms; ratio {ratio:.3f} "
          f"({'meets' if ratio <= 1.05 else 'misses'} the 1.05 goal){'; CONTENDED machine' if contended else ''}")
    out = args.out or ROOT / "benchmarks" / "results" / f"scorer_speed{'_contended' if contended else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"# written to {out}")


if __name__ == "__main__":
    main()
