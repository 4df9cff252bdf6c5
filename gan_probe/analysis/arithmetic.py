"""Vector arithmetic on z (paper Fig. 7) and the numbered sample sheet it starts from.

The protocol: write a numbered sheet of samples of a seed
(:func:`write_sheet`; sample ``i`` of seed ``S`` is
``G(gan_probe.sampling.latents(config, S, i, 1))``, whatever the sheet size);
a person picks exemplars of each concept by index (the paper: 3 each, e.g.
smiling woman, neutral woman, neutral man); :func:`vector_arithmetic` averages
each concept's z, decodes ``mean_a - mean_b + mean_c`` with 8 neighbours that
add uniform noise of +-0.25 to the result vector, and does the same arithmetic
on the exemplars' images (pixel space), which the paper shows gives noise.
The result z is not clamped to the prior's support (the paper does not say it
does).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from gan_probe.errors import GanProbeError
from gan_probe.models import DCGANConfig
from gan_probe.runs import write_json
from gan_probe.sampling import derive_seed, latents

CONCEPTS = ("a", "b", "c")
NEIGHBOURS = 8
_NOISE_STREAM = 0x6E6F6973  # "nois": the neighbours' noise, apart from the sheet's latents
_INDEX = re.compile(r"[+-]?\d+")


def parse_indices(text: str | None, name: str, sheet_size: int) -> list[int]:
    """``"3,7,12"`` -> [3, 7, 12], each a sample index on a sheet of ``sheet_size``; ``name`` is the
    parameter the text was given as (errors start with it)."""
    if text is None or not text.strip():
        raise GanProbeError(f"{name} is empty: give sample indices from the sheet, e.g. 3,7,12", param=name)
    out = []
    for token in text.split(","):
        token = token.strip()
        if not _INDEX.fullmatch(token):
            shown = repr(token) if token else "an empty entry"
            raise GanProbeError(f"{name}: {shown} is not a sample index (whole numbers from the sheet, "
                                f"comma-separated, e.g. 3,7,12)", param=name)
        out.append(int(token))
    return check_indices(out, name, sheet_size)


def check_indices(indices: list[int], name: str, sheet_size: int) -> list[int]:
    """``indices`` if each is on a sheet of ``sheet_size`` samples."""
    for i in indices:
        if not 0 <= i < sheet_size:
            raise GanProbeError(f"{name}: index {i} is not on the sheet (a sheet of {sheet_size} samples has "
                                f"indices 0..{sheet_size - 1}; give the sheet size the sheet was written with)",
                                param=name)
    return list(indices)


def sheet_indices(value: str | Sequence[int] | None, name: str, sheet_size: int) -> list[int]:
    """Sample indices given as text (``"3,7,12"``) or as a list of whole numbers, checked."""
    if value is None or isinstance(value, str):
        return parse_indices(value, name, sheet_size)
    if not value:
        raise GanProbeError(f"{name} is empty: give sample indices from the sheet, e.g. [3, 7, 12]", param=name)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
    if bad:
        raise GanProbeError(f"{name}: {bad[0]!r} is not a sample index (whole numbers from the sheet)", param=name)
    return check_indices([int(v) for v in value], name, sheet_size)


def sheet_images(g: torch.nn.Module, config: DCGANConfig, seed: int, n: int, batch_size: int = 256) -> torch.Tensor:
    """Samples 0..n-1 of ``seed`` (G in eval mode)."""
    from gan_probe.analysis.latent import decode

    if n < 1:
        raise GanProbeError(f"sheet_size must be at least 1, got {n}", param="sheet_size")
    return decode(g, latents(config, seed, 0, n), batch_size)


def sheet_name(seed: int) -> str:
    return f"sheet-seed{seed}"


def write_sheet(g: torch.nn.Module, config: DCGANConfig, seed: int, n: int, out_dir: str | os.PathLike,
                checkpoint: str = "", batch_size: int = 256) -> dict:
    """``sheet-seed{S}.png`` (each sample numbered under its tile) and ``sheet-seed{S}.json``
    (seed, size, each index's tile box in the PNG)."""
    from gan_probe.analysis.latent_draw import sheet_figure, tile_scale
    from gan_probe.figures import save_png

    images = sheet_images(g, config, seed, n, batch_size)
    scale = tile_scale(config.image_size)
    cols = min(n, 8 if n <= 64 else 16)
    figure, boxes = sheet_figure(images, 0, cols, scale,
                                 f"samples of seed {seed}: pick exemplars by number (--a/--b/--c, --seed {seed})")
    out_dir = Path(out_dir)
    png = save_png(figure, out_dir / f"{sheet_name(seed)}.png")
    index = {"seed": seed, "n": n, "checkpoint": checkpoint, "scale": scale, "image": png.name,
             "tiles": [{"index": i, "box": box} for i, box in enumerate(boxes)]}
    index_path = write_json(out_dir / f"{sheet_name(seed)}.json", index)
    return {"seed": seed, "n": n, "png": str(png), "index": str(index_path)}


def read_sheet_index(path: str | os.PathLike) -> dict:
    """A sheet's JSON index, checked."""
    try:
        d = json.loads(Path(path).read_text())
        tiles = {int(t["index"]): [int(v) for v in t["box"]] for t in d["tiles"]}
        return {"seed": int(d["seed"]), "n": int(d["n"]), "scale": int(d["scale"]), "tiles": tiles}
    except FileNotFoundError as e:
        raise GanProbeError(f"sheet index not found: {path}") from e
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise GanProbeError(f"{path} is not a gan-probe sheet index ({type(e).__name__})") from e


@dataclass
class ArithmeticResult:
    """All tensors on the CPU; images in G's range ([-1, 1]), ``pixel_result`` unclamped."""

    indices: dict[str, list[int]]  # concept -> sample indices
    exemplars: dict[str, torch.Tensor]  # concept -> k x C x H x W
    mean_z: dict[str, torch.Tensor]  # concept -> nz
    averages: dict[str, torch.Tensor]  # concept -> 1 x C x H x W, G(mean z)
    result_z: torch.Tensor  # 9 x nz: the result at index 4 (centre), noisy neighbours around it
    result_images: torch.Tensor  # 9 x C x H x W
    pixel_means: torch.Tensor  # 3 x C x H x W: the exemplars' mean images, A, B, C
    pixel_result: torch.Tensor  # 1 x C x H x W: mean A - mean B + mean C


def result_latents(result: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    """9 x nz: ``result`` in the centre (row-major index 4), 8 neighbours with U(-noise, noise) added."""
    if not noise >= 0 or noise == float("inf"):
        raise GanProbeError(f"noise must be a finite number >= 0, got {noise}", param="noise")
    g = torch.Generator().manual_seed(derive_seed(seed, _NOISE_STREAM))
    jitter = (torch.rand(NEIGHBOURS, result.numel(), generator=g, dtype=torch.float64) * 2 - 1) * noise
    around = result.double() + jitter
    return torch.cat([around[:4], result[None].double(), around[4:]]).to(result.dtype)


def vector_arithmetic(g: torch.nn.Module, config: DCGANConfig, seed: int, indices: dict[str, list[int]],
                      noise: float = 0.25, batch_size: int = 256) -> ArithmeticResult:
    """Fig. 7: ``indices`` maps "a", "b", "c" to sample indices of ``seed``."""
    from gan_probe.analysis.latent import decode

    missing = [c for c in CONCEPTS if not indices.get(c)]
    if missing:
        raise GanProbeError(f"vector arithmetic needs exemplars for {', '.join(missing)}")
    zs = {c: torch.stack([latents(config, seed, i, 1)[0] for i in indices[c]]) for c in CONCEPTS}
    mean_z = {c: zs[c].mean(0) for c in CONCEPTS}
    result = mean_z["a"] - mean_z["b"] + mean_z["c"]
    grid_z = result_latents(result, noise, seed)
    every = decode(g, torch.cat([*zs.values(), torch.stack(list(mean_z.values())), grid_z]), batch_size)
    parts = torch.split(every, [len(zs["a"]), len(zs["b"]), len(zs["c"]), 3, len(grid_z)])
    exemplars = dict(zip(CONCEPTS, parts[:3]))
    pixel_means = torch.stack([exemplars[c].double().mean(0) for c in CONCEPTS])
    pixel_result = (pixel_means[0] - pixel_means[1] + pixel_means[2])[None]
    return ArithmeticResult(
        indices={c: list(indices[c]) for c in CONCEPTS},
        exemplars=exemplars,
        mean_z=mean_z,
        averages={c: parts[3][k:k + 1] for k, c in enumerate(CONCEPTS)},
        result_z=grid_z,
        result_images=parts[4],
        pixel_means=pixel_means.float(),
        pixel_result=pixel_result.float(),
    )


def arithmetic_figure_for(result: ArithmeticResult, seed: int, noise: float, image_size: int):
    from gan_probe.analysis.latent_draw import arithmetic_figure, tile_scale

    names = {"a": "A", "b": "B", "c": "C"}
    concepts = [(names[c], result.indices[c], result.exemplars[c], result.averages[c]) for c in CONCEPTS]
    title = f"z arithmetic A - B + C (seed {seed}); paper Fig. 7 protocol"
    return arithmetic_figure(concepts, result.result_images, result.pixel_means, result.pixel_result, title,
                             noise, tile_scale(image_size))


def write_arithmetic(g: torch.nn.Module, config: DCGANConfig, seed: int, indices: dict[str, list[int]],
                     noise: float, out_dir: str | os.PathLike, batch_size: int = 256) -> dict:
    """Run :func:`vector_arithmetic`, write ``arithmetic-seed{S}.png``; returns the summary record."""
    from gan_probe.figures import save_png

    result = vector_arithmetic(g, config, seed, indices, noise, batch_size)
    png = save_png(arithmetic_figure_for(result, seed, noise, config.image_size),
                   Path(out_dir) / f"arithmetic-seed{seed}.png")
    pixel_clipped = float(((result.pixel_result < -1) | (result.pixel_result > 1)).float().mean())
    return {
        "seed": seed,
        "indices": result.indices,
        "noise": noise,
        "neighbours": NEIGHBOURS,
        "result_z": result.result_z[4].tolist(),
        "result_z_outside_prior": _outside_prior(result.result_z[4], config),
        "pixel_result_clipped_fraction": pixel_clipped,
        "figure": str(png),
    }


def _outside_prior(z: torch.Tensor, config: DCGANConfig) -> float:
    """Fraction of the result's coordinates outside [-1, 1] (uniform prior), else 0."""
    return float((z.abs() > 1).float().mean()) if config.z_dist == "uniform" else 0.0


def run_arithmetic(checkpoint: str | os.PathLike, *, sheet: bool = False, seed: int = 0, sheet_size: int = 64,
                   a: str | Sequence[int] | None = None, b: str | Sequence[int] | None = None,
                   c: str | Sequence[int] | None = None, noise: float = 0.25, out: str | os.PathLike | None = None,
                   batch_size: int = 256, device: str | torch.device = "auto") -> dict:
    """``gan-probe arithmetic``: the numbered sheet of ``seed`` (``sheet``) and/or A - B + C from
    its samples ``a``, ``b``, ``c`` (lists or ``"3,7,12"``), into ``out`` (default
    ``RUN_DIR/analysis/arithmetic``); returns the summary (the object ``--json`` prints).

    A sheet run after an arithmetic run of the same checkpoint and seed (or the reverse) keeps the
    other's record in summary.json; ``argv`` and ``settings`` are the latest call's.
    """
    from gan_probe import runs
    from gan_probe.checkpoint import load_generator
    from gan_probe.device import resolve_device

    given = {"a": a, "b": b, "c": c}
    if not sheet and all(v is None for v in given.values()):
        raise GanProbeError("nothing to do: give --sheet to number samples, or --a, --b and --c to do arithmetic")
    indices = None
    if any(v is not None for v in given.values()):
        indices = {k: sheet_indices(v, k, sheet_size) for k, v in given.items()}
    dev = resolve_device(str(device))
    g, config = load_generator(checkpoint, dev)
    out_dir = Path(out) if out is not None else runs.default_out(checkpoint, "arithmetic")
    results: dict = {"command": "arithmetic", "figure": "Fig. 7", "checkpoint": str(checkpoint), "seed": seed,
                     "labels_from": "not implemented"}
    results.update(_earlier_records(out_dir, results))
    if sheet:
        results["sheet"] = write_sheet(g, config, seed, sheet_size, out_dir, str(checkpoint), batch_size)
    if indices is not None:
        results["arithmetic"] = write_arithmetic(g, config, seed, indices, noise, out_dir, batch_size)
    files = {}
    if isinstance(results.get("sheet"), dict):
        files.update(sheet=results["sheet"]["png"], sheet_index=results["sheet"]["index"])
    if isinstance(results.get("arithmetic"), dict):
        files["arithmetic"] = results["arithmetic"]["figure"]
    settings = {"sheet": sheet, "sheet_size": sheet_size, **(indices or {"a": None, "b": None, "c": None}),
                "noise": noise, "batch_size": batch_size, "device": str(dev)}
    flags = runs.changed({"sheet": sheet, "seed": seed, "sheet_size": sheet_size, **(indices or {}),
                          "noise": noise if indices is not None else 0.25, "out": out, "batch_size": batch_size},
                         run_arithmetic)
    summary = runs.new_summary("arithmetic", results, argv=runs.command_line("arithmetic", checkpoint, **flags),
                               settings=settings, provenance=runs.provenance(checkpoint), seed=seed,
                               files=files, paper_figure="Fig. 7")
    runs.write_summary(out_dir, summary)
    return summary


def _earlier_records(out_dir: Path, summary: dict) -> dict:
    """The sheet / arithmetic records an earlier run of the same checkpoint and seed left in
    ``summary.json``: a sheet run after an arithmetic run (or the reverse) keeps both."""
    from gan_probe import runs

    old, _ = runs.read_summary(out_dir)
    if old is None or (old.get("checkpoint"), old.get("seed")) != (summary["checkpoint"], summary["seed"]):
        return {}
    return {k: old[k] for k in ("sheet", "arithmetic") if isinstance(old.get(k), dict)}
