"""classify: the paper's representation experiment (Tables 1 and 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import (BatchSizeOpt, CheckpointArg, DataRootOpt, DeviceOpt, JsonOpt, SeedOpt,
                               TrustPickleOpt, app, model_spec)

FEATURES_HELP = ("A feature space, by name in gan_probe.features' registry: disc (the paper's: D's conv layers "
                 "max-pooled to 4x4), random-disc (the untrained control), or any other registered one (an unknown "
                 "name lists them all).")
FLAGS = {"C": "--c", "store_dtype": "--store"}  # library parameters whose flag is not --the-same-name


@app.command(epilog="""Examples:

  gan-probe classify reference_models/digits --features disc --dataset digits --labels-per-class 10

  gan-probe classify reference_models/digits --features random-disc --dataset digits   # the untrained control

  gan-probe classify runs/imagenet32 --features disc --dataset cifar10 --device cuda    # Table 1, all labels

  gan-probe classify runs/imagenet32 --features disc --dataset cifar10 --labels-per-class 400 --repeats 10

  gan-probe classify runs/svhn --features disc --dataset svhn --bn-stats recompute --device cuda  # Table 2

  gan-probe classify RUN --features disc --dataset path/to/folder   # one sub-folder per class
""")
def classify(
    checkpoint: CheckpointArg,
    features: Annotated[str, typer.Option("--features", help=FEATURES_HELP)] = "disc",
    dataset: Annotated[str, typer.Option("--dataset", help="digits | cifar10 | svhn | an image folder with "
                                                           "one sub-folder per class.")] = "digits",
    labels_per_class: Annotated[int | None, typer.Option(
        "--labels-per-class", help="Labels drawn per class (0 = every pool label). Default: digits/folder 10, "
                                   "cifar10 0, svhn 100.")] = None,
    labels: Annotated[int | None, typer.Option("--labels", help="Total labels, split evenly over the classes "
                                                                 "(SVHN: 1000).")] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", help="Label draws scored on the test set (default: "
                                                                   "10; svhn 100).")] = None,
    val_draws: Annotated[int | None, typer.Option("--val-draws", help="Label draws per C on the validation set "
                                                                       "(default 10).")] = None,
    c: Annotated[float | None, typer.Option("--c", help="Use this C; skip the validation search.")] = None,
    c_grid: Annotated[str | None, typer.Option("--c-grid", help="Comma-separated C values to search (default: "
                                                                 "svhn the authors' 1e-4..1e-2; else 1e-5..10).")]
    = None,
    seed: SeedOpt = 0,
    solver: Annotated[str, typer.Option("--solver", help="auto | sklearn | torch (auto: torch).")] = "auto",
    standardize: Annotated[bool, typer.Option("--standardize/--no-standardize",
                                              help="Standardise features (pool statistics); the authors did not."
                                              )] = False,
    bn_stats: Annotated[str, typer.Option("--bn-stats", help="auto: recompute for random-disc (the fair "
                                                             "control), eval otherwise; eval: D's running "
                                                             "statistics; recompute: re-estimate them over the "
                                                             "training pool (the authors).")] = "auto",
    extend_grid: Annotated[bool | None, typer.Option(
        "--extend-grid/--no-extend-grid", help="When the chosen C is at an edge of the grid, extend the grid "
                                               "(x10 steps) while validation accuracy rises, or only warn. "
                                               "Default: extend the default grid, except svhn's (the authors': warn); a "
                                               "--c-grid is searched as given (warn).")] = None,
    no_baselines: Annotated[bool, typer.Option("--no-baselines", help="Skip the baselines (fair random D, "
                                                                      "pixels) and the paired comparison.")]
    = False,
    store: Annotated[str, typer.Option("--store", help="float16 | float32: feature storage in the cache.")]
    = "float16",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Keep features in memory; write no cache.")] = False,
    chunk_mb: Annotated[int, typer.Option("--chunk-mb", min=1, help="Largest float32 block of features the SVM "
                                                                     "holds at once (MiB).")] = 512,
    num_workers: Annotated[int, typer.Option("--num-workers", min=0, help="Data-loading processes (image "
                                                                        "datasets).")] = 2,
    json_out: JsonOpt = False,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for summary.json (default: "
                                                           "RUN_DIR/analysis/classify).")] = None,
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = 256,
    data_root: DataRootOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Linear L2-SVM on a GAN's discriminator features (paper section 5.1, Tables 1 and 2)."""
    from gan_probe.analysis.classify import BASELINES, ClassifyOptions, run_classify
    from gan_probe.errors import GanProbeError

    opts = ClassifyOptions(labels_per_class=labels_per_class, labels=labels, repeats=repeats, val_draws=val_draws,
                           c_grid=_parse_grid(c_grid) if c_grid else None, C=c, seed=seed, solver=solver,
                           standardize=standardize, bn_stats=bn_stats, extend_grid=extend_grid,
                           baselines=() if no_baselines else BASELINES, device=device, batch_size=batch_size,
                           num_workers=num_workers, data_root=str(data_root) if data_root else None,
                           store_dtype=store, use_cache=not no_cache, chunk_bytes=chunk_mb << 20,
                           progress=not (quiet or json_out))
    try:
        summary = run_classify(model_spec(checkpoint, trust_pickle=trust_pickle), features, dataset, opts, out=out)
    except GanProbeError as e:
        if e.param in FLAGS:  # name the flag this command gives that parameter
            raise type(e)(e.for_cli(FLAGS)) from e  # (the same type: an error every torchrun rank raised stays one)
        raise
    if summary is None:  # torchrun, rank > 0: rank 0 writes and prints
        return
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_table(summary, Path(summary["files"]["summary"]).parent)


def _parse_grid(text: str) -> tuple[float, ...]:
    from gan_probe.errors import GanProbeError

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise GanProbeError(f"--c-grid must be comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise GanProbeError(f"--c-grid needs positive values, got {text!r}")
    return values


def _print_table(s: dict, folder: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    spread = s["error"]["spread"]
    pm = f"± {spread:g}·std" if spread != 1 else "± std"
    per = "all" if s["labels_per_class"] == 0 else f"{s['labels_per_class']}/class"
    t = Table(title=f"L2-SVM on {s['features']} features ({s['feature_dim']:,}-d), {s['dataset']}, "
                    f"{s['labels']:,} labels ({per}) x {s['repeats']} draws",
              caption=f"{pm} over the label draws. Δ: {s['features']} minus the row, paired over the same draws "
                      f"(mean ± std of the per-draw differences, in points; draws favouring {s['features']} / "
                      "the row)")
    error = s["report"] == "error"  # the protocol's quantity (svhn: error, as Table 2)
    for col, justify in (("features", "left"), ("BatchNorm", "left"), ("C", "right"),
                         ("test error" if error else "test accuracy", "right"), (f"Δ vs {s['features']}", "right")):
        t.add_column(col, justify=justify, overflow="fold")

    def row(name: str, r: dict, delta: str = "") -> None:
        v = r["error" if error else "accuracy"]
        c = f"{r['C']:g}" + (" (edge!)" if r.get("c_warnings") else "")
        t.add_row(name, r["bn_stats"], c, f"{100 * v['mean']:.2f}% ± {100 * spread * v['std']:.2f}", delta)

    row(s["features"], s)
    for name, b in s.get("baselines", {}).items():
        p = s["paired"][name]
        d = p["difference"]
        fair = " (fair)" if name == "random-disc" and b["bn_stats"] == "recompute" else ""
        row(name, {**b, "bn_stats": b["bn_stats"] + fair},
            f"{100 * d['mean']:+.2f} ± {100 * d['std']:.2f} ({p['favour_features']}/{p['favour_baseline']})")
    p = s.get("paper")
    if p:
        acc = p.get("accuracy", 1 - p["error"] if "error" in p else None)
        std = f" ± {100 * p['std']:.1f}" if "std" in p else ""
        t.add_row(f"paper ({p['source']})", "", "", f"{100 * (1 - acc if error else acc):.2f}%{std}", "")
    c = Console()
    c.print(t)
    if s.get("verdict"):
        c.print(f"[bold]{escape(s['verdict']['text'])}[/bold]")
    for name, r in [(s["features"], s), *s.get("baselines", {}).items()]:
        for w in r.get("c_warnings", []):
            c.print(f"[yellow]warning ({name}): {escape(w)}[/yellow]")
        if r.get("c_extended"):
            c.print(f"{name}: grid extended to C = {', '.join(f'{v:g}' for v in r['c_extended'])}")
    c.print(f"C chosen on {s['sizes']['validation']:,} validation images over "
            f"{s['val_draws']} draw{'s' if s['val_draws'] != 1 else ''} per C, solver {s['solver']}, "
            f"{'standardised' if s['standardize'] else 'unstandardised'} features; written {folder / 'summary.json'}")
