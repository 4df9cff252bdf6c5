"""L2-SVM speed: gan-probe's torch solver vs scikit-learn's LinearSVC, same problems, one run.

Both solve the same objective (0.5 ||w||^2 + 0.5 b^2 + C sum squared hinge, one-vs-rest) to the
same tolerance; the script prints fit time, test accuracy and the speed ratio for:

1. digits-D features: the paper's 4x4-pooled conv features of a trained digits DCGAN
   (7,168-d), (a) 10 labels per class (the classify protocol's draws, 20 fits), (b) the whole
   digits:train pool (1,347 images);
2. a synthetic 10,000 x 8,192 problem (10 Gaussian classes), float32.

    python benchmarks/svm_speed.py --checkpoint reference_models/digits
    python benchmarks/svm_speed.py --checkpoint RUN --threads 1 --skip-synthetic

Goal (issue 6): torch >= 3x faster than LinearSVC on the CPU at equal accuracy (+-0.3 points).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def compare(name, x_train, y_train, x_test, y_test, C, device, repeats=1):
    from gan_probe.svm import accuracy, fit_linear_svm

    rows = []
    for solver in ("sklearn", "torch"):
        times, accs = [], []
        for xs, ys in zip(x_train, y_train):
            model, t = timed(lambda: fit_linear_svm(xs, ys, C, solver=solver, device=device))
            times.append(t)
            accs.append(accuracy(model, x_test, y_test))
        rows.append((solver, float(np.sum(times)), float(np.mean(accs))))
    (_, t_sk, a_sk), (_, t_t, a_t) = rows
    print(f"{name:<44} C={C:<7g} sklearn {t_sk:8.2f}s acc {100 * a_sk:6.2f}%   torch {t_t:8.2f}s "
          f"acc {100 * a_t:6.2f}%   speed-up {t_sk / t_t:5.1f}x   |acc diff| {100 * abs(a_sk - a_t):.2f} pt")
    return t_sk / t_t, abs(a_sk - a_t)


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
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--synthetic-n", type=int, default=10_000)
    ap.add_argument("--synthetic-dim", type=int, default=8192)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads; liblinear is single-threaded; "
          f"load average at the start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")
    ratios = []

    from gan_probe.analysis.classify import draw_labels, draw_rng, stratified_split

    f = digits_features(args.checkpoint, device)
    (xtr, ytr), (xte, yte) = f["train"], f["test"]
    pool, _ = stratified_split(np.arange(len(ytr)), ytr, 0.2)
    draws = [np.sort(draw_labels(ytr, pool, 10, draw_rng(0, 1, r))) for r in range(20)]
    for C in (1e-3, 1e-1):
        ratios.append(compare("digits-D 7,168-d, 10 labels/class x 20 draws", [xtr[d] for d in draws],
                              [ytr[d] for d in draws], xte, yte, C, device))
    for C in (1e-3, 1e-1):
        ratios.append(compare(f"digits-D 7,168-d, all {len(ytr)} train labels", [xtr], [ytr], xte, yte, C, device))

    if not args.skip_synthetic:
        rng = np.random.default_rng(0)
        n, dim = args.synthetic_n, args.synthetic_dim
        centers = rng.normal(0, 1, (10, dim)).astype(np.float32) * 0.05
        y = rng.integers(0, 10, n + 2000)
        x = centers[y] + rng.normal(0, 1, (n + 2000, dim)).astype(np.float32)
        ratios.append(compare(f"synthetic {n:,} x {dim:,}", [x[:n]], [y[:n]], x[n:], y[n:], 1e-3, device))
    worst = min(r for r, _ in ratios)
    print(f"\nsmallest speed-up {worst:.1f}x (goal >= 3x); largest accuracy gap "
          f"{100 * max(d for _, d in ratios):.2f} points (goal <= 0.3)")


if __name__ == "__main__":
    main()
