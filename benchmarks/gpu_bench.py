"""Every GPU figure of the project in one run, one JSON (run through benchmarks/gpu.sh).

Items (each fails soft: its error is recorded and the next item runs):

- ``train``: ``gan-probe train`` img/s on digits (batch 128, bf16 autocast, channels_last) against the
  pytorch/examples loop (``examples_dcgan_loop.py --bf16 --channels-last --in-memory``); steady-state img/s
  from two lengths of whole-process runs ((steps2 - steps1) x batch / (t2 - t1)), so start-up cancels;
- ``inception``: FID Inception img/s, gan-probe's extractor (uint8 in, resize on the device) against
  pytorch-fid's ``InceptionV3`` on the same 32-px images and the same (stand-in) weights, and their largest
  feature difference; ``dinov2``: recorded as skipped unless its weights are in the torch hub cache;
- ``knn``: exact 5-NN, 10k queries x 50k points x 2048-d, on the GPU and on the CPU, and whether the
  neighbours agree;
- ``svm``: the torch L2-SVM on synthetic features, GPU against CPU, with both accuracies;
- ``fid50k``: end to end ``gan-probe fid a.npy b.npy`` on two sets of 50,000 synthetic 32-px images (a
  subprocess, wall time, the FID);
- peak GPU memory of every item (``torch.cuda.max_memory_allocated``; subprocesses report their own).

Stand-in Inception weights are built on the fly (``write_standin_weights``): speeds are those of the real
network, the numbers are not pytorch-fid's. ``--dry-run``: tiny sizes on the CPU, to test the plumbing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

FULL = dict(train_steps=(50, 550), train_batch=128, inc_n=5000, inc_batch=250, knn=(10_000, 50_000, 2048),
            svm=(20_000, 4096), fid_n=50_000, fid_dims=2048, fid_batch=500, timeout=240)
DRY = dict(train_steps=(2, 4), train_batch=16, inc_n=8, inc_batch=4, knn=(40, 200, 64), svm=(300, 32), fid_n=12,
           fid_dims=64, fid_batch=6, timeout=240)


def child(argv: list[str]) -> None:
    """``--child module|script TARGET ARGS...``: run TARGET, then print its peak GPU memory."""
    kind, target, args = argv[0], argv[1], argv[2:]
    sys.argv = [target, *args]
    code = 0
    try:
        if kind == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    import torch

    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    print(f"PEAK_BYTES {peak}", flush=True)
    sys.exit(code)


def run_child(kind: str, target: str, args: list, timeout: float) -> tuple[float, int, str]:
    """(wall seconds, peak GPU bytes, stdout) of a child process; raises with its stderr's last line on failure."""
    cmd = [sys.executable, str(Path(__file__)), "--child", kind, target, *map(str, args)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise RuntimeError(f"{target} exited {r.returncode}: {last}")
    peak = next((int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("PEAK_BYTES")), 0)
    return wall, peak, r.stdout


def gpu_peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def gpu_peak(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated())
    return 0


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def item_train(cfg: dict, device: str, work: Path) -> dict:
    s1, s2 = cfg["train_steps"]
    b = cfg["train_batch"]
    out: dict = {"batch_size": b, "steps": [s1, s2]}
    for name, kind, target, extra in (
            ("gan_probe", "module", "gan_probe",
             ["train", "--dataset", "digits", "--device", device, "--batch-size", b, "--checkpoint-every", 10 ** 6,
              "--log-every", 50, "-q"]),
            ("pytorch_examples", "script", str(HERE / "examples_dcgan_loop.py"),
             ["--device", device, "--batch-size", b, "--in-memory", "--channels-last"]
             + (["--bf16"] if device.startswith("cuda") else []))):
        walls, peaks = [], []
        for steps in (s1, s2):
            args = list(extra) + (["--max-steps", steps, "--out", work / f"train_{steps}"] if kind == "module"
                                  else ["--steps", steps])
            wall, peak, _ = run_child(kind, target, args, cfg["timeout"])
            walls.append(wall)
            peaks.append(peak)
        out[name] = {"wall_s": walls, "img_per_s": (s2 - s1) * b / max(walls[1] - walls[0], 1e-9),
                     "peak_gpu_bytes": max(peaks)}
    out["ratio_img_per_s"] = out["gan_probe"]["img_per_s"] / out["pytorch_examples"]["img_per_s"]
    return out


def _images(n: int, seed: int, size: int = 32) -> np.ndarray:
    """Smooth random 32-px uint8 images (upsampled 4x4 noise), N x H x W x 3."""
    import torch
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, 5000):
        small = torch.rand(min(5000, n - start), 3, 4, 4, generator=g)
        big = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
        out.append((big * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def item_inception(cfg: dict, device: str, weights: Path) -> dict:
    import torch

    from gan_probe.features.inception import InceptionExtractor, to_inception_input

    n, bs = cfg["inc_n"], cfg["inc_batch"]
    imgs = torch.from_numpy(_images(n, 1)).permute(0, 3, 1, 2).contiguous()
    out: dict = {"n": n, "batch_size": bs, "input": "32-px uint8, resized to 299 by each tool"}

    gpu_peak_reset(device)
    ours = InceptionExtractor(weights, device, 2048)
    ours(to_inception_input(imgs[:bs].to(device)))  # warm-up
    sync(device)
    t = time.perf_counter()
    feats = [ours(to_inception_input(imgs[i:i + bs].to(device))).features for i in range(0, n, bs)]
    sync(device)
    out["gan_probe"] = {"img_per_s": n / (time.perf_counter() - t), "peak_gpu_bytes": gpu_peak(device)}
    del ours

    import pytorch_fid.inception as pfi

    pfi.load_state_dict_from_url = lambda *a, **k: torch.load(weights, weights_only=True)
    gpu_peak_reset(device)
    theirs = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval().to(device)
    with torch.no_grad():  # pytorch-fid's get_activations: float [0, 1] in, resize inside the model
        theirs(imgs[:bs].to(device).float() / 255)
        sync(device)
        t = time.perf_counter()
        tf = [theirs(imgs[i:i + bs].to(device).float() / 255)[0].squeeze(-1).squeeze(-1).cpu()
              for i in range(0, n, bs)]
        sync(device)
    out["pytorch_fid"] = {"img_per_s": n / (time.perf_counter() - t), "peak_gpu_bytes": gpu_peak(device)}
    diff = (torch.cat([f.double() for f in feats]) - torch.cat(tf).double()).abs().max().item()
    out["max_abs_feature_difference"] = diff
    out["ratio_img_per_s"] = out["gan_probe"]["img_per_s"] / out["pytorch_fid"]["img_per_s"]
    return out


def item_dinov2(cfg: dict, device: str) -> dict:
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    found = sorted(hub.glob("dinov2*.pth")) if hub.is_dir() else []
    if not found:
        return {"skipped": f"no DINOv2 weights in {hub} (the GPU machine is offline); to be taken"}
    return {"skipped": f"DINOv2 weights found ({found[0].name}) but this script has no DINOv2 pass yet"}


def item_knn(cfg: dict, device: str) -> dict:
    import torch

    from gan_probe.knn import knn

    nq, npts, dim = cfg["knn"]
    rng = np.random.default_rng(0)
    q = rng.standard_normal((nq, dim), dtype=np.float32)
    p = rng.standard_normal((npts, dim), dtype=np.float32)
    out: dict = {"queries": nq, "points": npts, "dim": dim, "k": 5}
    res = {}
    for dev in ([device, "cpu"] if device != "cpu" else ["cpu"]):
        gpu_peak_reset(dev)
        knn(q[: min(nq, 64)], p, 5, device=dev)  # warm-up
        t = time.perf_counter()
        d, i = knn(q, p, 5, device=dev)
        sync(dev)
        res[dev] = i
        out["gpu" if dev != "cpu" else "cpu"] = {"seconds": time.perf_counter() - t, "peak_gpu_bytes": gpu_peak(dev),
                                                "threads": torch.get_num_threads()}
    if "gpu" in out:
        out["speedup_gpu_over_cpu"] = out["cpu"]["seconds"] / out["gpu"]["seconds"]
        out["same_neighbours"] = bool(np.array_equal(res[device], res["cpu"]))
    return out


def item_svm(cfg: dict, device: str) -> dict:
    from gan_probe.svm import fit_linear_svm

    n, dim = cfg["svm"]
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, dim)).astype(np.float32) * 0.3
    y = rng.integers(0, 10, n)
    x = centers[y] + rng.standard_normal((n, dim), dtype=np.float32)
    half = n // 2
    out: dict = {"n_train": half, "n_test": n - half, "dim": dim, "classes": 10, "C": 0.01}
    for dev in ([device, "cpu"] if device != "cpu" else ["cpu"]):
        gpu_peak_reset(dev)
        t = time.perf_counter()
        model = fit_linear_svm(x[:half], y[:half], 0.01, solver="torch", device=dev)
        sync(dev)
        secs = time.perf_counter() - t
        acc = float((np.asarray(model.predict(x[half:])) == y[half:]).mean()) if hasattr(model, "predict") else None
        out["gpu" if dev != "cpu" else "cpu"] = {"seconds": secs, "test_accuracy": acc, "peak_gpu_bytes": gpu_peak(dev)}
    if "gpu" in out:
        out["speedup_gpu_over_cpu"] = out["cpu"]["seconds"] / out["gpu"]["seconds"]
    return out


def item_fid50k(cfg: dict, device: str, weights: Path, work: Path) -> dict:
    n = cfg["fid_n"]
    a, b = work / "fid_a.npy", work / "fid_b.npy"
    np.save(a, _images(n, 2))
    np.save(b, _images(n, 3))
    args = ["fid", a, b, "--device", device, "--inception-weights", weights, "--dims", cfg["fid_dims"], "--no-cache",
            "--json", "--batch-size", cfg["fid_batch"], "--num-workers", 0]
    wall, peak, stdout = run_child("module", "gan_probe", args, cfg["timeout"])
    text = stdout[: stdout.rfind("PEAK_BYTES")]
    fid = json.loads(text)["fid"]
    return {"n_per_side": n, "image_size": 32, "dims": cfg["fid_dims"], "source": ".npy arrays", "wall_s": wall,
            "img_per_s": 2 * n / wall, "fid": fid, "peak_gpu_bytes": peak}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gpu.json")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: tests the plumbing, no figures")
    ap.add_argument("--only", default="", help="comma list of items (default: all)")
    args = ap.parse_args(argv)
    cfg = DRY if args.dry_run else FULL
    device = "cpu" if args.dry_run else args.device

    import torch

    from gan_probe.features.inception import write_standin_weights

    report: dict = {"dry_run": args.dry_run, "device": device, "torch": torch.__version__,
                    "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "weights": "stand-in (write_standin_weights): speeds are real, numbers are not pytorch-fid's",
                    "items": {}, "failed": []}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gan-probe-gpu-") as tmp:
        work = Path(tmp)
        os.environ["GAN_PROBE_CACHE"] = str(work / "cache")  # children too: no cache shared with the user
        weights = write_standin_weights(work / "standin_inception.pth")
        items = {
            "train": lambda: item_train(cfg, device, work),
            "inception": lambda: item_inception(cfg, device, weights),
            "dinov2": lambda: item_dinov2(cfg, device),
            "knn": lambda: item_knn(cfg, device),
            "svm": lambda: item_svm(cfg, device),
            "fid50k": lambda: item_fid50k(cfg, device, weights, work),
        }
        chosen = [s for s in args.only.split(",") if s] or list(items)
        for name in chosen:
            t = time.perf_counter()
            try:
                result = items[name]()
            except Exception as e:  # fail soft: record and go on
                result = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}",
                          "traceback_tail": traceback.format_exc().strip().splitlines()[-3:]}
                report["failed"].append(name)
            result["item_seconds"] = time.perf_counter() - t
            report["items"][name] = result
            print(f"{name}: {'FAILED ' + result['error'] if 'error' in result else 'done'} "
                  f"({result['item_seconds']:.1f} s)", file=sys.stderr, flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")  # after each item: a cut run keeps the rest
    report["total_seconds"] = time.perf_counter() - t_all
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out} ({len(report['failed'])} item(s) failed)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
