"""The representation experiment offline: trained D vs a fairly tuned random D vs pixels.

For each setting: train a DCGAN on 2 CPU cores (or reuse a checkpoint), then score four
feature spaces under the same label draws (same seed, so the same labelled images for
every space): the trained D (BatchNorm running statistics, and re-estimated on the data),
a random D of the same architecture with BatchNorm statistics re-estimated on the data
(the fair baseline; several initialisation seeds), and raw pixels. C is chosen on the
validation set from a decade grid that is widened whenever the chosen C sits at its edge,
so no space is under-tuned. Prints one markdown table per setting, with the paired
difference trained - random (mean +- std over draws, and draws won / lost / tied).

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/representation_offline.py \
        --settings digits-shipped,digits-long,shapes --out runs/representation-offline

Settings (``--list``): see SETTINGS below. Training reuses ``OUT/SETTING/checkpoints/last.pt``
when it exists (delete it to retrain). Raw results: ``OUT/SETTING/representation.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_probe.analysis import classify as C  # noqa: E402
from gan_probe.analysis import classify_features as cf  # noqa: E402

SVHN_CONFIG = ROOT / "reference_models" / "configs" / "svhn_32.json"
START_GRID = tuple(10.0 ** k for k in range(-6, 3))  # 1e-6 .. 100
MAX_WIDENINGS = 4

# name -> dataset, and either a shipped checkpoint or gan_probe.train.TrainConfig fields
SETTINGS: dict[str, dict] = {
    "digits-shipped": {"dataset": "digits", "checkpoint": str(ROOT / "reference_models" / "digits")},
    "digits-long": {"dataset": "digits", "train": {"max_steps": 1200}},
    "digits-wide": {"dataset": "digits", "train": {"max_steps": 300, "ndf": 128}},
    "digits-svhn-d": {"dataset": "digits", "train": {"max_steps": 300, "model_config": "svhn",
                                                     "lr": 5e-4, "batch_size": 64}},
    "shapes": {"dataset": "shapes", "train": {"max_steps": 300}},
    "shapes-long": {"dataset": "shapes", "train": {"max_steps": 1200}},
    "shapes-wide": {"dataset": "shapes", "train": {"max_steps": 300, "ndf": 128}},
    "shapes-svhn-d": {"dataset": "shapes", "train": {"max_steps": 300, "model_config": "svhn",
                                                     "lr": 5e-4, "batch_size": 64}},
}


def train_setting(name: str, setting: dict, out: Path, seed: int) -> tuple[Path, dict]:
    """The setting's checkpoint (trained now unless already there) and how long training took."""
    if "checkpoint" in setting:
        return Path(setting["checkpoint"]), {"trained": False}
    from gan_probe.train import TrainConfig, train

    run = out / name
    last = run / "checkpoints" / "last.pt"
    if last.is_file():
        return run, {"trained": False, "reused": str(last)}
    kw = dict(setting["train"])
    if kw.get("model_config") == "svhn":
        kw["model_config"] = json.loads(SVHN_CONFIG.read_text())["model"]
    cfg = TrainConfig(dataset=setting["dataset"], out=str(run), seed=seed, device="cpu", num_workers=0,
                      checkpoint_every=100, log_every=25, **kw)
    t0, c0 = time.perf_counter(), time.process_time()
    train(cfg, progress=False)
    return run, {"trained": True, "steps": cfg.max_steps, "wall_s": round(time.perf_counter() - t0, 1),
                 "cpu_s": round(time.process_time() - c0, 1)}


def evaluate_space(checkpoint: Path, dataset: str, features: str, bn_stats: str, init_seed: int,
                   per_class_list: list[int], repeats: int, val_draws: int, seed: int) -> dict[int, dict]:
    """One feature space: extract once, then for each labels-per-class the protocol with a C grid
    widened until the chosen C is inside it."""
    from gan_probe.checkpoint import load_checkpoint, model_config

    protocol = C.Protocol(dataset, f"{dataset}:train", f"{dataset}:test", c_grid=START_GRID)
    spec = protocol.train
    config = model_config(load_checkpoint(_resolve(checkpoint)))
    opts = C.ClassifyOptions(seed=seed, bn_stats=bn_stats, use_cache=False, repeats=repeats, val_draws=val_draws)
    space = cf.make_feature_space(features, _resolve(checkpoint), torch.device("cpu"), seed=init_seed)
    split = C.load_split(protocol, spec, space, _resolve(checkpoint), opts, config)
    split.check_disjoint()
    out = {}
    for k in per_class_list:
        grid = list(START_GRID)
        for widening in range(MAX_WIDENINGS + 1):
            opts.labels_per_class, opts.c_grid = k, tuple(grid)
            r = C.evaluate_protocol(split, protocol, opts)
            if r["C"] == grid[-1] and widening < MAX_WIDENINGS:
                grid += [grid[-1] * 10, grid[-1] * 100]
            elif r["C"] == grid[0] and widening < MAX_WIDENINGS:
                grid = [grid[0] / 100, grid[0] / 10] + grid
            else:
                break
        r["C_at_grid_edge"] = r["C"] in (grid[0], grid[-1])
        out[k] = r
    return out


def _resolve(checkpoint: Path) -> Path:
    from gan_probe.checkpoint import resolve_checkpoint

    return resolve_checkpoint(checkpoint)


def paired(a: list[float], b: list[float]) -> dict:
    d = 100 * (np.asarray(a) - np.asarray(b))
    return {"mean": float(d.mean()), "std": float(d.std()), "wins": int((d > 0).sum()),
            "losses": int((d < 0).sum()), "ties": int((d == 0).sum())}


def run_setting(name: str, args, out: Path) -> dict:
    setting = SETTINGS[name]
    ckpt, train_info = train_setting(name, setting, out, args.seed)
    spaces = [("disc", "eval", 0), ("disc", "recompute", 0)]
    spaces += [("random-disc", "recompute", s) for s in range(args.random_inits)]
    spaces += [("pixels", "eval", 0)]
    rows = {}
    for features, bn, init in spaces:
        label = f"{features} bn={bn}" + (f" init={init}" if features == "random-disc" else "")
        t0 = time.perf_counter()
        rows[label] = evaluate_space(ckpt, setting["dataset"], features, bn, init, args.labels_per_class,
                                     args.repeats, args.val_draws, args.seed)
        print(f"  [{name}] {label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    result = {"setting": name, "dataset": setting["dataset"], "checkpoint": str(ckpt), "train": train_info,
              "seed": args.seed, "repeats": args.repeats, "val_draws": args.val_draws, "spaces": {}}
    for label, per_k in rows.items():
        result["spaces"][label] = {str(k): {"accuracy": r["accuracy"], "C": r["C"], "c_grid": r["c_grid"],
                                            "C_at_grid_edge": r["C_at_grid_edge"],
                                            "validation": r["validation"]} for k, r in per_k.items()}
    trained = "disc bn=eval"
    result["paired"] = {}
    for k in args.labels_per_class:
        t = rows[trained][k]["accuracy"]["values"]
        result["paired"][str(k)] = {
            other: paired(t, rows[other][k]["accuracy"]["values"]) for other in rows if other != trained}
        rnd = [rows[lbl][k]["accuracy"]["values"] for lbl in rows if lbl.startswith("random-disc")]
        result["paired"][str(k)]["random-disc (mean of inits)"] = paired(t, list(np.mean(rnd, axis=0)))
        tr = rows["disc bn=recompute"][k]["accuracy"]["values"]
        result["paired"][str(k)]["disc bn=recompute vs random-disc (mean of inits)"] = paired(
            tr, list(np.mean(rnd, axis=0)))
    (out / name).mkdir(parents=True, exist_ok=True)
    (out / name / "representation.json").write_text(json.dumps(result, indent=1))
    return result


def table(result: dict) -> str:
    lines = [f"### {result['setting']} ({result['dataset']}; train: {json.dumps(result['train'])})", "",
             "| features | labels/class | test accuracy % (mean ± std) | C | trained D − this (points, paired) | draws trained D wins / loses / ties |",
             "|---|---|---|---|---|---|"]
    for label, per_k in result["spaces"].items():
        for k, r in per_k.items():
            a = r["accuracy"]
            p = result["paired"][k].get(label)
            diff = f"{p['mean']:+.2f} ± {p['std']:.2f}" if p else "—"
            wins = f"{p['wins']} / {p['losses']} / {p['ties']}" if p else "—"
            edge = " (grid edge)" if r["C_at_grid_edge"] else ""
            lines.append(f"| {label} | {k} | {100 * a['mean']:.2f} ± {100 * a['std']:.2f} | {r['C']:g}{edge} | "
                         f"{diff} | {wins} |")
    for k, comps in result["paired"].items():
        for name in ("random-disc (mean of inits)", "disc bn=recompute vs random-disc (mean of inits)"):
            p = comps[name]
            lines.append(f"\n{k}/class, trained D {'(eval BN)' if name.startswith('random') else '(recomputed BN)'}"
                         f" − random D (mean of inits): {p['mean']:+.2f} ± {p['std']:.2f} points, "
                         f"wins {p['wins']} / loses {p['losses']} / ties {p['ties']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", default="digits-shipped,shapes")
    ap.add_argument("--out", default="runs/representation-offline")
    ap.add_argument("--labels-per-class", default="10,25")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--val-draws", type=int, default=10)
    ap.add_argument("--random-inits", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for name, s in SETTINGS.items():
            print(name, json.dumps(s))
        return
    torch.set_num_threads(args.threads)
    args.labels_per_class = [int(k) for k in args.labels_per_class.split(",")]
    out = Path(args.out)
    for name in args.settings.split(","):
        if name not in SETTINGS:
            sys.exit(f"unknown setting {name!r}; --list shows them")
        print(table(run_setting(name, args, out)), "\n", flush=True)


if __name__ == "__main__":
    main()
