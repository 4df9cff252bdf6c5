"""gan-probe's ViT encoders vs the reference implementation (transformers), same device, same weights.

    python benchmarks/encoders_speed.py                    # ViT-L/14 both encoders, 32 images, CPU
    python benchmarks/encoders_speed.py --quick            # 8 images, batch 4, one timed pass
    python benchmarks/encoders_speed.py --arch tiny --quick   # seconds: checks the script runs
    python benchmarks/encoders_speed.py --device cuda --n 512 --batch 64

For each encoder (dinov2, clip): a transformers model with random weights in the real ViT-L
configuration (facebook/dinov2-large; openai/clip-vit-large-patch14-336), its state dict loaded
through gan-probe's converter into gan-probe's network, then on the same preprocessed batch:
  - reference: transformers' forward in float32 (as dgm-eval / cmmd-pytorch run it),
  - gan-probe: ``Encoder.embed`` (bfloat16 autocast on CUDA; float32, channels-last input and
    torch's fused attention on CPU),
and img/s of each, their ratio, the max abs difference of the features (on CUDA it includes
bfloat16 rounding), plus gan-probe end to end from uint8 images (its PIL preprocessing included).
transformers' Dinov2 interpolates the 37x37 position grid without DINOv2's +0.1 offset; the
reference here gets DINOv2's interpolation instead (a once-per-batch cost), so the features agree. Records the CPU model, its ISA flags, torch's CPU
capability, threads and the load average: on shared cores compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def cpu_info() -> dict:
    info = {"machine": platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__}
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), None)
        flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
        info["cpu_model"] = model
        info["isa"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16",
                                   "amx_int8") if f in flags]
    except OSError:
        info["cpu_model"] = platform.processor()
    try:
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        pass
    return info


def reference_model(name: str, arch: str):
    import transformers

    torch.manual_seed(0)
    big = arch == "vitl"
    if name == "dinov2":
        cfg = transformers.Dinov2Config(hidden_size=1024 if big else 64, num_hidden_layers=24 if big else 2,
                                        num_attention_heads=16 if big else 4, mlp_ratio=4,
                                        image_size=518 if big else 56, patch_size=14)
        return transformers.Dinov2Model(cfg).eval()
    cfg = transformers.CLIPVisionConfig(hidden_size=1024 if big else 64, intermediate_size=4096 if big else 256,
                                        num_hidden_layers=24 if big else 2, num_attention_heads=16 if big else 4,
                                        image_size=336 if big else 56, patch_size=14,
                                        projection_dim=768 if big else 32, hidden_act="quick_gelu")
    return transformers.CLIPVisionModelWithProjection(cfg).eval()


def our_encoder(name: str, ref, arch: str, device: torch.device):
    from gan_probe.encoders import clip as clip_mod
    from gan_probe.encoders import dinov2 as dino_mod
    from gan_probe.encoders.base import Encoder
    from gan_probe.encoders.preprocess import cmmd_preprocess, dgm_eval_preprocess
    from gan_probe.encoders.vit import ViTSpec, load_vit

    mod = dino_mod if name == "dinov2" else clip_mod
    spec = mod.SPEC
    if arch == "tiny":
        spec = ViTSpec(**{**spec.__dict__, "embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_dim": 256,
                          "img_size": 28 if name == "dinov2" else 56,
                          "proj_dim": 32 if spec.proj_dim else None})
    model = load_vit(spec, mod.to_timm(ref.state_dict(), spec), "random weights").to(device)
    size = spec.img_size
    pre = ((lambda im: dgm_eval_preprocess(im, size)) if name == "dinov2" else (lambda im: cmmd_preprocess(im, size)))
    return Encoder(name, spec.out_dim, "benchmark", "benchmark", Path("random"), "random", "in memory", None,
                   model, pre, device, l2_normalize=name == "clip"), size


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(fn, batches, device, repeats: int) -> tuple[float, list]:
    fn(batches[0])  # warm-up
    sync(device)
    best, outs = float("inf"), []
    for _ in range(repeats):
        t = time.perf_counter()
        outs = [fn(b) for b in batches]
        sync(device)
        best = min(best, time.perf_counter() - t)
    n = sum(len(b) for b in batches)
    return n / best, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", default="dinov2,clip")
    ap.add_argument("--n", type=int, default=32, help="images per timed pass")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="timed passes; the best is kept")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--arch", choices=("vitl", "tiny"), default="vitl")
    ap.add_argument("--quick", action="store_true", help="8 images, batch 4, one timed pass")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    if args.quick:
        args.n, args.batch, args.repeats = 8, 4, 1
    from gan_probe.device import resolve_device

    device = resolve_device(args.device)
    res = {"device": str(device), "arch": args.arch, "n": args.n, "batch": args.batch, "repeats": args.repeats,
           "host": cpu_info(), "loadavg_start": os.getloadavg()[0], "encoders": {}}
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)
    rng = np.random.default_rng(0)
    images = [torch.from_numpy(rng.integers(0, 256, (3, 256, 256), dtype=np.uint8)) for _ in range(args.n)]
    image_batches = [torch.stack(images[i:i + args.batch]) for i in range(0, args.n, args.batch)]
    for name in args.encoders.split(","):
        ref = reference_model(name, args.arch)
        enc, size = our_encoder(name, ref, args.arch, device)
        if name == "dinov2":  # DINOv2's own grid interpolation (as torch hub's model; tested in test_encoders.py)
            from gan_probe.encoders.vit import dinov2_resample_pos_embed

            emb = ref.embeddings
            emb.interpolate_pos_encoding = lambda e, h, w: dinov2_resample_pos_embed(emb.position_embeddings, h // 14)
        ref = ref.to(device)
        x_batches = [enc.preprocess(b) for b in image_batches]

        @torch.inference_mode()
        def ref_forward(x):
            out = ref(pixel_values=x.to(device))
            f = (out.pooler_output if name == "dinov2" else out.image_embeds).float().cpu()
            return f / torch.linalg.norm(f, dim=-1, keepdim=True) if name == "clip" else f

        r_ref, f_ref = rate(ref_forward, x_batches, device, args.repeats)
        r_ours, f_ours = rate(enc.embed, x_batches, device, args.repeats)
        r_e2e, _ = rate(enc, image_batches, device, args.repeats)
        t = time.perf_counter()
        for b in image_batches:
            enc.preprocess(b)
        pre_rate = args.n / (time.perf_counter() - t)
        diff = float((torch.cat(f_ref) - torch.cat(f_ours)).abs().max())
        res["encoders"][name] = {"input_px": size, "reference_img_per_s": round(r_ref, 3),
                                 "gan_probe_img_per_s": round(r_ours, 3),
                                 "speedup": round(r_ours / r_ref, 3),
                                 "gan_probe_end_to_end_img_per_s": round(r_e2e, 3),
                                 "preprocessing_img_per_s": round(pre_rate, 1),
                                 "precision": enc.precision, "max_abs_diff": diff}
        print(f"{name}: reference {r_ref:.2f} img/s, gan-probe {r_ours:.2f} img/s ({r_ours / r_ref:.2f}x), "
              f"end to end {r_e2e:.2f} img/s; max |diff| {diff:.2e}", file=sys.stderr)
        del ref, enc
    res["loadavg_end"] = os.getloadavg()[0]
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
