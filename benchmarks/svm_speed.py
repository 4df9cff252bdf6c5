"""L2-SVM speed: gan-probe's torch solver vs scikit-learn's LinearSVC, same problems, one run.

Both solve the same objective (0.5 ||w||^2 + 0.5 b^2 + C sum squared hinge, one-vs-rest) to the
same tolerance; the script prints fit time, test accuracy and the speed ratio for:

1. digits-D features: the paper's 4x4-pooled conv features of a trained digits DCGAN
   (7,168-d), (a) 10 labels per class (the classify protocol's draws, 20 fits), (b) the whole
   digits:train pool (1,347 images);
2. a synthetic 10,000 x 8,192 problem (10 Gaussian classes), float32;
3. the whole digits protocol (10 labels/class, 7 C x 10 validation draws + 10 test draws) through
   ``evaluate_protocol``: LinearSVC fits every (draw, C) from zero, the torch solver warm-starts.

The two solvers alternate (sklearn, torch, sklearn, torch ... ``--repeats`` times) in this one
process, so a ratio taken on a busy machine compares like with like; the first line names the
machine (``benchmarks/machine.py``: CPU, ISA class, cores, torch build, ISA env vars, load).

    OMP_NUM_THREADS=1 python benchmarks/svm_speed.py --checkpoint reference_models/digits
    python benchmarks/svm_speed.py --checkpoint RUN --threads 1 --skip-synthetic
    # kernels dispatched as on an AVX2-only CPU (on an AVX-512 / AMX machine):
    ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 OMP_NUM_THREADS=1 \
        python benchmarks/svm_speed.py --checkpoint reference_models/digits

Goal (issues 6, 15): torch >= 3x faster than LinearSVC on every CPU kind at equal accuracy
(+-0.3 points) and objective (relative gap printed; ours should be no worse than 1e-4).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def compare(name, x_train, y_train, x_test, y_test, C, device, repeats=1):
    """Fit every (x, y) with each solver, alternating sklearn / torch ``repeats`` times; the
    best time of each, the mean test accuracy and the largest relative objective gap."""
    from gan_probe.svm import accuracy, fit_linear_svm, primal_objective

    best = {"sklearn": float("inf"), "torch": float("inf")}
    accs, objs = {}, {}
    for _ in range(repeats):
        for solver in ("sklearn", "torch"):
            total, a, o = 0.0, [], []
            for xs, ys in zip(x_train, y_train):
                model, t = timed(lambda: fit_linear_svm(xs, ys, C, solver=solver, device=device))
                total += t
                a.append(accuracy(model, x_test, y_test))
                o.append(primal_objective(model, xs, ys, C).sum())
            best[solver] = min(best[solver], total)
            accs[solver], objs[solver] = float(np.mean(a)), np.asarray(o)
    t_sk, t_t = best["sklearn"], best["torch"]
    a_sk, a_t = accs["sklearn"], accs["torch"]
    gap = float(np.max((objs["torch"] - objs["sklearn"]) / objs["sklearn"]))
    print(f"{name:<44} C={C:<7g} sklearn {t_sk:8.2f}s acc {100 * a_sk:6.2f}%   torch {t_t:8.2f}s "
          f"acc {100 * a_t:6.2f}%   speed-up {t_sk / t_t:5.1f}x   |acc diff| {100 * abs(a_sk - a_t):.2f} pt   "
          f"objective (torch - sklearn) / sklearn {gap:+.1e}", flush=True)
    return {"case": name, "C": C, "sklearn_s": t_sk, "torch_s": t_t, "speedup": t_sk / t_t,
            "acc_sklearn": a_sk, "acc_torch": a_t, "objective_gap": gap}


def compare_protocol(features, device, repeats=1):
    """The whole digits protocol through evaluate_protocol: sklearn (cold fits) vs torch (warm)."""
    from gan_probe.analysis import classify as C
    from gan_probe.analysis import classify_features as cf

    (xtr, ytr), (xte, yte) = features["train"], features["test"]
    pool, val = C.stratified_split(np.arange(len(ytr)), ytr, 0.2)
    split = C.Split(cf.FeatureSet(xtr, ytr), pool, val, cf.FeatureSet(xte, yte), np.arange(len(yte)))
    best, res = {}, {}
    for _ in range(repeats):
        for solver in ("sklearn", "torch"):
            opts = C.ClassifyOptions(solver=solver, device=str(device))
            r, t = timed(lambda: C.evaluate_protocol(split, C.PROTOCOLS["digits"], opts))
            best[solver], res[solver] = min(best.get(solver, float("inf")), t), r
    sk, to = res["sklearn"], res["torch"]
    name = "digits protocol, 7 C x 10 draws + 10 test fits"
    print(f"{name:<44} C*={sk['C']:g}/{to['C']:g} sklearn {best['sklearn']:8.2f}s acc "
          f"{100 * sk['accuracy']['mean']:6.2f}%   torch {best['torch']:8.2f}s acc {100 * to['accuracy']['mean']:6.2f}%"
          f"   speed-up {best['sklearn'] / best['torch']:5.1f}x   (torch: warm starts along C and draws)", flush=True)
    return {"case": name, "C": [sk["C"], to["C"]], "sklearn_s": best["sklearn"], "torch_s": best["torch"],
            "speedup": best["sklearn"] / best["torch"], "acc_sklearn": sk["accuracy"]["mean"],
            "acc_torch": to["accuracy"]["mean"], "objective_gap": 0.0}


def digits_features(checkpoint, device):
    from gan_probe.analysis import classify_features as cf
    from gan_probe.data import load_dataset

    space = cf.make_feature_space("disc", checkpoint, device)
    out = {}
    for split in ("train", "test"):
        ds = load_dataset(f"digits:{split}", space.image_size, space.channels)
        feats = np.empty((len(ds), space.dim), dtype=np.float32)
        cf.extract_into(space, ds, feats, batch_size=256)
        out[split] = (feats, cf.dataset_labels(ds))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="reference_models/digits")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1, help="sklearn/torch alternations per case (best time kept)")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-protocol", action="store_true")
    ap.add_argument("--synthetic-n", type=int, default=10_000)
    ap.add_argument("--synthetic-dim", type=int, default=8192)
    ap.add_argument("--features-npz", default=None,
                    help="cache of the digits features (written on the first run, read after)")
    ap.add_argument("--out", default=None, help="JSON results (default: benchmarks/results/svm_speed.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe, machine_info

    info = machine_info()
    print(describe(info))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads; liblinear is single-threaded; "
          f"alternating sklearn/torch x {args.repeats}.", flush=True)
    rows = []

    from gan_probe.analysis.classify import draw_labels, draw_rng, stratified_split

    if args.features_npz and Path(args.features_npz).exists():
        z = np.load(args.features_npz)
        f = {"train": (z["xtr"], z["ytr"]), "test": (z["xte"], z["yte"])}
    else:
        f = digits_features(args.checkpoint, device)
        if args.features_npz:
            np.savez(args.features_npz, xtr=f["train"][0], ytr=f["train"][1], xte=f["test"][0], yte=f["test"][1])
    (xtr, ytr), (xte, yte) = f["train"], f["test"]
    pool, _ = stratified_split(np.arange(len(ytr)), ytr, 0.2)
    draws = [np.sort(draw_labels(ytr, pool, 10, draw_rng(0, 1, r))) for r in range(20)]
    for C in (1e-3, 1e-1):
        rows.append(compare("digits-D 7,168-d, 10 labels/class x 20 draws", [xtr[d] for d in draws],
                            [ytr[d] for d in draws], xte, yte, C, device, args.repeats))
    for C in (1e-3, 1e-1):
        rows.append(compare(f"digits-D 7,168-d, all {len(ytr)} train labels", [xtr], [ytr], xte, yte, C, device,
                            args.repeats))
    if not args.skip_protocol:
        rows.append(compare_protocol(f, device, args.repeats))

    if not args.skip_synthetic:
        rng = np.random.default_rng(0)
        n, dim = args.synthetic_n, args.synthetic_dim
        centers = rng.normal(0, 1, (10, dim)).astype(np.float32) * 0.05
        y = rng.integers(0, 10, n + 2000)
        x = centers[y] + rng.normal(0, 1, (n + 2000, dim)).astype(np.float32)
        rows.append(compare(f"synthetic {n:,} x {dim:,}", [x[:n]], [y[:n]], x[n:], y[n:], 1e-3, device,
                            args.repeats))
    worst = min(r["speedup"] for r in rows)
    acc_gap = max(abs(r["acc_sklearn"] - r["acc_torch"]) for r in rows)
    obj_gap = max(r["objective_gap"] for r in rows)
    print(f"\nsmallest speed-up {worst:.1f}x (goal >= 3x); largest accuracy gap {100 * acc_gap:.2f} points "
          f"(goal <= 0.3); largest objective excess {obj_gap:+.1e} (relative)")
    out = Path(args.out or Path(__file__).resolve().parent / "results" / "svm_speed.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "command": " ".join(sys.argv), "cases": rows}, indent=1))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
