"""filters: D's first-layer filters, top-activating images and guided backprop (paper Fig. 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import (BatchSizeOpt, CheckpointArg, DataRootOpt, DeviceOpt, DownloadOpt, JsonOpt,
                               TrustPickleOpt, app, model_spec)


@app.command(epilog="""Examples:

  gan-probe filters runs/digits                # paper Fig. 5: 6 features x top-5, random vs trained D

  gan-probe filters runs/digits --layer 1 --features 0-11 --top-k 8

  gan-probe filters runs/cifar --dataset cifar10:test --n-images 10000 --json

Writes RUN_DIR/analysis/filters/: guided_backprop.png (random | trained side by side, as Fig. 5),
top_images.png (the images that excite each feature most), first_layer_filters.png, summary.json
(the same object --json prints).
""")
def filters(
    checkpoint: CheckpointArg,
    layer: Annotated[int, typer.Option("--layer", help="D's conv layer (0 = input layer; -1 = the last).")] = -1,
    features: Annotated[str, typer.Option("--features", help="Channels of that layer: 0,1,2 or 0-5.")]
    = "0,1,2,3,4,5",
    top_k: Annotated[int, typer.Option("--top-k", help="Top-activating images per feature (Fig. 5: 5).")] = 5,
    dataset: Annotated[str, typer.Option("--dataset", help="Images to search (default: the run's training "
                                                           "dataset), e.g. digits, cifar10:test, a folder.")] = "",
    n_images: Annotated[int, typer.Option("--n-images", help="Search at most this many images (a seeded "
                                                             "random subset of larger datasets).")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the image subset and the random-init D's weights.")]
    = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: RUN_DIR/analysis/filters).")]
    = None,
    batch_size: BatchSizeOpt = 256,
    device: DeviceOpt = "auto",
    data_root: DataRootOpt = None,
    download: DownloadOpt = False,
    json_out: JsonOpt = False,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """What D's features respond to: guided backpropagation of their maximal responses (paper Fig. 5)."""
    from gan_probe import runs
    from gan_probe.analysis.filters import parse_features, visualize_filters
    from gan_probe.device import resolve_device

    out_dir = out or runs.default_out(checkpoint, "filters")
    summary = visualize_filters(model_spec(checkpoint, trust_pickle=trust_pickle), out_dir, layer=layer, features=parse_features(features), top_k=top_k,
                                dataset=dataset, n_images=n_images, seed=seed, batch_size=batch_size,
                                device=resolve_device(device), data_root=data_root, download=download)
    from rich.console import Console

    for note in summary["notes"]:
        Console(stderr=True).print(f"[yellow]note:[/] {note}", highlight=False)
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.table import Table

    t = Table(title=f"filters: layer {summary['settings']['layer']} of {summary['checkpoint']}")
    t.add_column("feature", justify="right")
    t.add_column("trained D: top responses (dataset index: response)")
    t.add_column("random D: top responses")
    for tr, rd in zip(summary["trained"], summary["random"]):
        t.add_row(str(tr["feature"]),
                  "  ".join(f"{i}:{v:.3g}" for i, v in zip(tr["dataset_index"], tr["response"])),
                  "  ".join(f"{i}:{v:.3g}" for i, v in zip(rd["dataset_index"], rd["response"])))
    console = Console()
    console.print(t)
    console.print(f"figures in {Path(summary['files']['summary']).parent}")


def default_analysis_dir(given: Path, checkpoint_file: Path, name: str) -> Path:
    """RUN_DIR/analysis/<name> (:func:`gan_probe.runs.default_out`); ``checkpoint_file`` is what
    ``given`` resolved to, kept for callers of the old signature."""
    from gan_probe import runs

    return runs.default_out(given if Path(given).is_dir() else checkpoint_file, name)
