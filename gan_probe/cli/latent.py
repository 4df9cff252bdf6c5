"""walk, arithmetic: the latent-space commands (paper Figs. 4, 7, 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import BatchSizeOpt, CheckpointArg, DeviceOpt, JsonOpt, SeedOpt, app

OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder (default: RUN_DIR/analysis/<command>/).")]
SheetSizeOpt = Annotated[int, typer.Option("--sheet-size", min=1,
                                           help="Samples on the numbered sheet; indices must be below it.")]


def default_out(checkpoint: Path, command: str) -> Path:
    """``<RUN_DIR>/analysis/<command>``; a loose checkpoint file's folder stands in for RUN_DIR."""
    from gan_probe.checkpoint import resolve_checkpoint

    ckpt = resolve_checkpoint(checkpoint)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run_dir / "analysis" / command


@app.command(epilog="""Reproduces paper Fig. 4 (walking in the latent space) and Fig. 8 ("turn" vectors).

Examples:

  gan-probe walk reference_models/digits --gif        # Fig. 4: 8 rows, 9 points

  gan-probe walk runs/celeba --rows 4 --steps 12 --mode slerp --seed 3

  gan-probe arithmetic runs/celeba --sheet --seed 0   # numbered samples to pick from

  gan-probe walk runs/celeba --seed 0 --from-indices 3,7,12 --to-indices 5,9,22   # Fig. 8

  gan-probe walk runs/celeba --endpoints runs/celeba/analysis/walk/endpoints.json  # redraw exactly
""")
def walk(
    checkpoint: CheckpointArg,
    rows: Annotated[int, typer.Option(min=0, help="Paths, >= 1 (Fig. 4: row k goes from sample #k to #k+1 of "
                                                  "--seed); with --from/--to-indices: samples the turn vector is "
                                                  "added to (0: only the walk between the two averages).")]
    = 8,
    steps: Annotated[int, typer.Option(min=2, help="Frames per path, both endpoints included.")] = 10,
    seed: SeedOpt = 0,
    mode: Annotated[str, typer.Option(help="auto (slerp for normal z, lerp for uniform z) | lerp | slerp. "
                                           "Uniform z is clamped to [-1, 1].")] = "auto",
    from_indices: Annotated[str | None, typer.Option("--from-indices", help="Sheet indices (of --seed) averaged "
                                                                            "into the start, e.g. 3,7,12.")] = None,
    to_indices: Annotated[str | None, typer.Option("--to-indices", help="Sheet indices averaged into the end.")]
    = None,
    sheet_size: SheetSizeOpt = 64,
    endpoints: Annotated[Path | None, typer.Option("--endpoints", help="A walk's endpoints.json: redraw those "
                                                                       "paths with their recorded steps.")] = None,
    gif: Annotated[bool, typer.Option("--gif", help="Also write walk.gif (every path, forward and back).")] = False,
    features: Annotated[str, typer.Option(help="Smoothness spaces: auto (pixels, disc, and inception when its "
                                               "weights load) or a comma list.")] = "auto",
    ppl_samples: Annotated[int, typer.Option(min=0, help="Pairs for the offline path length (0: skip).")] = 1000,
    json_out: JsonOpt = False,
    out: OutOpt = None,
    batch_size: BatchSizeOpt = 256,
    device: DeviceOpt = "auto",
) -> None:
    """Walk between seeded latent points: grid (+ GIF), smoothness, offline path length."""
    from gan_probe.analysis.arithmetic import parse_indices
    from gan_probe.analysis.latent import load_feature_spaces, random_walk_paths, resolve_mode, turn_paths
    from gan_probe.analysis.walk import read_endpoints, write_walk
    from gan_probe.checkpoint import load_generator
    from gan_probe.device import resolve_device
    from gan_probe.errors import GanProbeError

    if (from_indices is None) != (to_indices is None):
        raise GanProbeError("--from-indices and --to-indices go together (a turn vector needs both ends)")
    if from_indices is not None:  # checked before any model is loaded
        start = parse_indices(from_indices, "--from-indices", sheet_size)
        end = parse_indices(to_indices, "--to-indices", sheet_size)
    dev = resolve_device(device)
    g, config = load_generator(checkpoint, dev)
    provenance: dict = {"checkpoint": str(checkpoint), "seed": seed}
    if endpoints is not None:
        paths, steps = read_endpoints(endpoints, config)
        provenance.update(source=f"endpoints from {endpoints}", figure="Fig. 4/8")
    elif from_indices is not None:
        paths = turn_paths(config, seed, start, end, rows, resolve_mode(mode, config))
        provenance.update(source=f"turn vector, sheet seed {seed}", figure="Fig. 8", from_indices=start,
                          to_indices=end)
    else:
        paths = random_walk_paths(config, seed, rows, resolve_mode(mode, config))
        provenance.update(source=f"samples #0..#{rows} of seed {seed}", figure="Fig. 4")
    spaces, skipped = load_feature_spaces(features, checkpoint, dev)
    provenance["features_skipped"] = skipped
    summary = write_walk(g, config, paths, steps, out or default_out(checkpoint, "walk"), spaces=spaces,
                         provenance=provenance, ppl_samples=ppl_samples, ppl_seed=seed, gif=gif,
                         batch_size=batch_size)
    if json_out:
        typer.echo(json.dumps(summary))
        return
    _print_walk(summary)


def _print_walk(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    spaces = list(s["smoothness"])
    t = Table(title=f"latent walk: {s['source']} ({'/'.join(s['modes'])}, {s['steps']} steps) - paper {s['figure']}")
    t.add_column("path")
    for name in spaces:
        t.add_column(f"max jump ({name})", justify="right")
    t.add_column("sharp")
    for r, label in enumerate(s["paths"]):
        cells = []
        for name in spaces:
            j = s["smoothness"][name]["paths"][r]["max_jump"]
            cells.append("-" if j is None else f"{j:.3f}")
        sharp = [name for name in spaces if s["smoothness"][name]["paths"][r]["sharp"]]
        t.add_row(label, *cells, "[red]" + ", ".join(sharp) if sharp else "no")
    console.print(t)
    console.print("max jump: largest consecutive-frame distance / endpoint distance (even steps: "
                  f"{1 / (s['steps'] - 1):.3f}); sharp: see docs/latent.md", style="dim")
    if s["ppl"]:
        for name, p in s["ppl"].items():
            console.print(f"offline path length ({name}, {p['n']} pairs, {p['mode']}): {p['value']:.4g}  "
                          "[dim](not comparable with LPIPS PPL)[/]")
    for name, why in s["features_skipped"].items():  # a note, not a result: stderr
        Console(stderr=True).print(f"[dim]{name} features skipped: {why}[/]")
    for what, path in s["files"].items():
        console.print(f"{what}: {path}")


@app.command(epilog="""Reproduces paper Fig. 7 (vector arithmetic on z, and the same in pixel space).

Examples:

  gan-probe arithmetic reference_models/digits --sheet --seed 0     # 1. numbered samples

  gan-probe arithmetic reference_models/digits --seed 0 --a 3,7,12 --b 5,9,22 --c 1,4,8

  gan-probe arithmetic runs/celeba --seed 0 --a 3,7,12 --b 5,9,22 --c 1,4,8 --noise 0.1 --json

Naming exemplars with a classifier (--labels-from) is not implemented: pick them from the sheet.
""")
def arithmetic(
    checkpoint: CheckpointArg,
    sheet: Annotated[bool, typer.Option("--sheet", help="Write the numbered sheet of samples of --seed.")] = False,
    seed: SeedOpt = 0,
    sheet_size: SheetSizeOpt = 64,
    a: Annotated[str | None, typer.Option("--a", help="Sheet indices of concept A, e.g. 3,7,12.")] = None,
    b: Annotated[str | None, typer.Option("--b", help="Sheet indices of concept B (subtracted).")] = None,
    c: Annotated[str | None, typer.Option("--c", help="Sheet indices of concept C (added).")] = None,
    noise: Annotated[float, typer.Option(min=0.0, help="Uniform noise (+-) added to the result for the 8 "
                                                       "neighbours (the paper: 0.25).")] = 0.25,
    json_out: JsonOpt = False,
    out: OutOpt = None,
    batch_size: BatchSizeOpt = 256,
    device: DeviceOpt = "auto",
) -> None:
    """Average exemplar z per concept and decode A - B + C (with noisy neighbours and pixel-space arithmetic)."""
    from gan_probe.analysis.arithmetic import parse_indices, write_arithmetic, write_sheet
    from gan_probe.checkpoint import load_generator
    from gan_probe.device import resolve_device
    from gan_probe.errors import GanProbeError
    from gan_probe.io import atomic_write_text

    given = {"a": a, "b": b, "c": c}
    if not sheet and all(v is None for v in given.values()):
        raise GanProbeError("nothing to do: give --sheet to number samples, or --a, --b and --c to do arithmetic")
    indices = None
    if any(v is not None for v in given.values()):
        indices = {k: parse_indices(v, f"--{k}", sheet_size) for k, v in given.items()}
    dev = resolve_device(device)
    g, config = load_generator(checkpoint, dev)
    out_dir = out or default_out(checkpoint, "arithmetic")
    summary: dict = {"command": "arithmetic", "figure": "Fig. 7", "checkpoint": str(checkpoint), "seed": seed,
                     "labels_from": "not implemented"}
    summary.update(_earlier_records(Path(out_dir) / "summary.json", summary))
    if sheet:
        summary["sheet"] = write_sheet(g, config, seed, sheet_size, out_dir, str(checkpoint), batch_size)
    if indices is not None:
        summary["arithmetic"] = write_arithmetic(g, config, seed, indices, noise, out_dir, batch_size)
    atomic_write_text(Path(out_dir) / "summary.json", json.dumps(summary, indent=1) + "\n")
    if json_out:
        typer.echo(json.dumps(summary))
        return
    if sheet:
        typer.echo(f"sheet: {summary['sheet']['png']} (index: {summary['sheet']['index']})")
        if indices is None:
            typer.echo(f"next: gan-probe arithmetic {checkpoint} --seed {seed} --a I,J,K --b I,J,K --c I,J,K")
    if indices is not None:
        r = summary["arithmetic"]
        typer.echo(f"A {r['indices']['a']} - B {r['indices']['b']} + C {r['indices']['c']} (seed {seed}): "
                   f"{r['figure']}")


def _earlier_records(path: Path, summary: dict) -> dict:
    """The sheet / arithmetic records an earlier run of the same checkpoint and seed left in
    ``summary.json``: a --sheet run after an arithmetic run (or the reverse) keeps both."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(old, dict):
        return {}
    if (old.get("checkpoint"), old.get("seed")) != (summary["checkpoint"], summary["seed"]):
        return {}
    return {k: old[k] for k in ("sheet", "arithmetic") if isinstance(old.get(k), dict)}
