"""walk, arithmetic: the latent-space commands (paper Figs. 4, 7, 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import CheckpointArg, JsonOpt, ModelRun, SeedOpt, app, option_groups

OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder (default: RUN_DIR/analysis/<command>/).")]
SheetSizeOpt = Annotated[int, typer.Option("--sheet-size", min=1,
                                           help="Samples on the numbered sheet; indices must be below it.")]


@app.command(epilog="""Reproduces paper Fig. 4 (walking in the latent space) and Fig. 8 ("turn" vectors).

Examples:

  gan-probe walk reference_models/digits --gif        # Fig. 4: 8 rows, 9 points

  gan-probe walk runs/celeba --rows 4 --steps 12 --mode slerp --seed 3

  gan-probe arithmetic runs/celeba --sheet --seed 0   # numbered samples to pick from

  gan-probe walk runs/celeba --seed 0 --from-indices 3,7,12 --to-indices 5,9,22   # Fig. 8

  gan-probe walk runs/celeba --endpoints runs/celeba/analysis/walk/endpoints.json  # redraw exactly
""")
@option_groups
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
    run: ModelRun = ModelRun(),
) -> None:
    """Walk between seeded latent points: grid (+ GIF), smoothness, offline path length."""
    from gan_probe.analysis.walk import run_walk

    summary = run_walk(run.spec(checkpoint), rows=rows, steps=steps, seed=seed, mode=mode, from_indices=from_indices,
                       to_indices=to_indices, sheet_size=sheet_size, endpoints=endpoints, gif=gif, features=features,
                       ppl_samples=ppl_samples, out=out, batch_size=run.batch_size, device=run.device,
                       progress=not json_out)
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
@option_groups
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
    run: ModelRun = ModelRun(),
) -> None:
    """Average exemplar z per concept and decode A - B + C (with noisy neighbours and pixel-space arithmetic)."""
    from gan_probe.analysis.arithmetic import run_arithmetic

    summary = run_arithmetic(run.spec(checkpoint), sheet=sheet, seed=seed, sheet_size=sheet_size, a=a, b=b, c=c,
                             noise=noise, out=out, batch_size=run.batch_size, device=run.device)
    if json_out:
        typer.echo(json.dumps(summary))
        return
    if sheet:
        typer.echo(f"sheet: {summary['sheet']['png']} (index: {summary['sheet']['index']})")
        if summary["settings"]["a"] is None:
            typer.echo(f"next: gan-probe arithmetic {checkpoint} --seed {seed} --a I,J,K --b I,J,K --c I,J,K")
    if summary["settings"]["a"] is not None:
        r = summary["arithmetic"]
        typer.echo(f"A {r['indices']['a']} - B {r['indices']['b']} + C {r['indices']['c']} (seed {seed}): "
                   f"{r['figure']}")
