"""`gan-probe walk`: a latent walk's grid, GIF, endpoint sidecar, smoothness and PPL.

The sidecar ``endpoints.json`` holds every path's two endpoints (full z vectors),
its mode and the number of steps: :func:`read_endpoints` gives back the same
paths, so ``gan-probe walk CKPT --endpoints endpoints.json`` redraws the figure
exactly, whatever seed or sheet produced it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from gan_probe.analysis.latent import (SharpRule, WalkPath, frame_times, perceptual_path_length, walk_frames,
                                       walk_smoothness)
from gan_probe.errors import GanProbeError
from gan_probe.io import atomic_write_text
from gan_probe.models import DCGANConfig

ENDPOINTS_FORMAT = "gan-probe/walk-endpoints"


def endpoints_record(paths: list[WalkPath], steps: int, config: DCGANConfig, provenance: dict) -> dict:
    return {"format": ENDPOINTS_FORMAT, "version": 1, "steps": steps, "nz": config.nz, "z_dist": config.z_dist,
            **provenance, "paths": [p.to_dict() for p in paths]}


def read_endpoints(path: str | os.PathLike, config: DCGANConfig) -> tuple[list[WalkPath], int]:
    """(paths, steps) recorded by a previous walk; checked against ``config``."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise GanProbeError(f"endpoints file not found: {path}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GanProbeError(f"{path} is not a walk's endpoints.json (not JSON)") from e
    if not isinstance(d, dict) or d.get("format") != ENDPOINTS_FORMAT:
        raise GanProbeError(f"{path} is not a walk's endpoints.json (format {ENDPOINTS_FORMAT!r} missing)")
    if d.get("nz") != config.nz or d.get("z_dist") != config.z_dist:
        raise GanProbeError(f"{path} was recorded for nz={d.get('nz')} {d.get('z_dist')} z; this checkpoint has "
                            f"nz={config.nz} {config.z_dist} z")
    paths = [WalkPath.from_dict(p, config.nz) for p in d.get("paths") or []]
    if not paths:
        raise GanProbeError(f"{path} records no paths")
    steps = d.get("steps")
    if not isinstance(steps, int):
        raise GanProbeError(f"{path} records no number of steps")
    frame_times(steps)
    return paths, steps


def _row_notes(smoothness: dict, rows: int) -> tuple[list[str], list[int | None]]:
    notes, marks = [], []
    for r in range(rows):
        parts, mark, sharp_in = [], None, []
        for name, s in smoothness.items():
            p = s["paths"][r]
            jump = "-" if p["max_jump"] is None else f"{p['max_jump']:.2f}"
            parts.append(f"{name} {jump}")
            if p["sharp"]:
                sharp_in.append(name)
                mark = p["max_jump_step"] if mark is None else mark
        note = ("max jump " + ", ".join(parts)) if parts else ""
        notes.append(note + (f"  SHARP ({', '.join(sharp_in)})" if sharp_in else ""))
        marks.append(mark)
    return notes, marks


def write_walk(g: torch.nn.Module, config: DCGANConfig, paths: list[WalkPath], steps: int, out_dir: str | os.PathLike,
               *, spaces: dict, provenance: dict, ppl_samples: int, ppl_seed: int, gif: bool,
               rule: SharpRule = SharpRule(), batch_size: int = 256) -> dict:
    """Decode the walk, measure it, write walk.png (+ walk.gif), endpoints.json, summary.json."""
    from gan_probe.analysis.latent_draw import save_gif, tile_scale, walk_figure, walk_gif_frames
    from gan_probe.figures import save_png

    out_dir = Path(out_dir)
    frames = walk_frames(g, paths, steps, config.z_dist, batch_size)
    smoothness = walk_smoothness(g, spaces, paths, frames, config.z_dist, rule, batch_size)
    modes = sorted({p.mode for p in paths})
    ppl = (perceptual_path_length(g, config, spaces, ppl_seed, ppl_samples, paths[0].mode, batch_size=batch_size)
           if ppl_samples > 0 and spaces else None)

    endpoints = out_dir / "endpoints.json"
    atomic_write_text(endpoints, json.dumps(endpoints_record(paths, steps, config, provenance)) + "\n")
    labels = [p.label for p in paths]
    notes, marks = _row_notes(smoothness, len(paths))
    scale = tile_scale(config.image_size)
    title = (f"latent walk ({'/'.join(modes)}, {len(paths)} paths x {steps} steps, "
             f"{provenance.get('source', '')}) - paper {provenance.get('figure', 'Fig. 4')}")
    files = {"grid": str(save_png(walk_figure(frames, labels, notes, marks, title, scale), out_dir / "walk.png")),
             "endpoints": str(endpoints)}
    if gif:
        gif_frames, durations = walk_gif_frames(frames, labels, scale)
        files["gif"] = str(save_gif(gif_frames, out_dir / "walk.gif", durations))
    summary = {
        "command": "walk",
        **provenance,
        "rows": len(paths),
        "steps": steps,
        "modes": modes,
        "z_dist": config.z_dist,
        "paths": labels,
        "sharp_rule": rule.to_dict(),
        "smoothness": smoothness,
        "ppl": ppl,
        "files": files,
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary
