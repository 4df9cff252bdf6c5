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
from typing import Sequence

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
               rule: SharpRule = SharpRule(), batch_size: int = 256, progress: bool = False) -> dict:
    """Decode the walk, measure it, write walk.png (+ walk.gif) and endpoints.json; return the results
    (:func:`run_walk` makes them the run's summary.json). ``progress``: bars (or lines) on stderr."""
    from gan_probe.analysis.latent_draw import save_gif, tile_scale, walk_figure, walk_gif_frames
    from gan_probe.figures import save_png

    out_dir = Path(out_dir)
    frames = walk_frames(g, paths, steps, config.z_dist, batch_size)
    smoothness = walk_smoothness(g, spaces, paths, frames, config.z_dist, rule, batch_size, progress)
    modes = sorted({p.mode for p in paths})
    ppl = (perceptual_path_length(g, config, spaces, ppl_seed, ppl_samples, paths[0].mode, batch_size=batch_size,
                                  progress=progress)
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
    return {
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


def run_walk(checkpoint: str | os.PathLike, *, rows: int = 8, steps: int = 10, seed: int = 0, mode: str = "auto",
             from_indices: str | Sequence[int] | None = None, to_indices: str | Sequence[int] | None = None,
             sheet_size: int = 64, endpoints: str | os.PathLike | None = None, gif: bool = False,
             features: str = "auto", ppl_samples: int = 1000, out: str | os.PathLike | None = None,
             batch_size: int = 256, device: str | torch.device = "auto", progress: bool = False) -> dict:
    """``gan-probe walk``: the walk's figures, endpoints.json and summary.json in ``out`` (default
    ``RUN_DIR/analysis/walk``); returns the summary (the object ``--json`` prints).

    Paths: Fig. 4's walk through samples #0..#rows of ``seed``; with ``from_indices`` and
    ``to_indices`` (sample indices of ``seed``'s sheet of ``sheet_size``, a list or ``"3,7,12"``)
    Fig. 8's turn vector added to ``rows`` samples; with ``endpoints`` (a walk's endpoints.json)
    those paths and steps again. ``features``: ``auto`` or a comma list of feature spaces.
    ``progress``: progress with the time left on stderr (the CLI's default, off with ``--json``).
    """
    from gan_probe import runs
    from gan_probe.analysis.arithmetic import sheet_indices
    from gan_probe.analysis.latent import load_feature_spaces, random_walk_paths, resolve_mode, turn_paths
    from gan_probe.checkpoint import load_generator
    from gan_probe.device import resolve_device

    if (from_indices is None) != (to_indices is None):
        given = "from_indices" if to_indices is None else "to_indices"
        raise GanProbeError(f"{given}: a turn vector needs both ends; from and to indices go together",
                            param=given)
    start = end = None
    if from_indices is not None:  # checked before any model is loaded
        start = sheet_indices(from_indices, "from_indices", sheet_size)
        end = sheet_indices(to_indices, "to_indices", sheet_size)
    dev = resolve_device(str(device))
    g, config = load_generator(checkpoint, dev)
    provenance: dict = {"checkpoint": str(checkpoint), "seed": seed}
    frames_per_path = steps
    if endpoints is not None:
        paths, frames_per_path = read_endpoints(endpoints, config)
        provenance.update(source=f"endpoints from {endpoints}", figure="Fig. 4/8")
    elif start is not None:
        paths = turn_paths(config, seed, start, end, rows, resolve_mode(mode, config))
        provenance.update(source=f"turn vector, sheet seed {seed}", figure="Fig. 8", from_indices=start,
                          to_indices=end)
    else:
        paths = random_walk_paths(config, seed, rows, resolve_mode(mode, config))
        provenance.update(source=f"samples #0..#{rows} of seed {seed}", figure="Fig. 4")
    spaces, skipped = load_feature_spaces(features, checkpoint, dev)
    provenance["features_skipped"] = skipped
    out_dir = Path(out) if out is not None else runs.default_out(checkpoint, "walk")
    results = write_walk(g, config, paths, frames_per_path, out_dir, spaces=spaces, provenance=provenance,
                         ppl_samples=ppl_samples, ppl_seed=seed, gif=gif, batch_size=batch_size, progress=progress)
    settings = {"rows": rows, "steps": steps, "mode": mode, "from_indices": start, "to_indices": end,
                "sheet_size": sheet_size, "endpoints": None if endpoints is None else str(endpoints), "gif": gif,
                "features": features, "ppl_samples": ppl_samples, "batch_size": batch_size, "device": str(dev)}
    flags = runs.changed({k: v for k, v in settings.items() if k != "device"} | {"out": out, "seed": seed},
                         run_walk)
    summary = runs.new_summary("walk", results, argv=runs.command_line("walk", checkpoint, **flags),
                               settings=settings, provenance=runs.provenance(checkpoint), seed=seed,
                               paper_figure=provenance["figure"])
    runs.write_summary(out_dir, summary)
    return summary
