"""memorization: does the generator copy its training set?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import (BatchSizeOpt, ClassOpt, DataRootOpt, DeviceOpt, DownloadOpt, JsonOpt, PsiOpt,
                               SeedOpt, TrustPickleOpt, app, model_spec, source_spec)


@app.command(epilog="""Examples:

  gan-probe memorization reference_models/digits --train digits:train --test digits:test

  gan-probe memorization runs/cifar --train cifar10:train --test cifar10:test --features inception --n 10000

  gan-probe memorization fake_pngs/ --train train_pngs/ --test test_pngs/ --out mem/ --json

Reproduces the DCGAN paper's nearest-training-image check (its Fig. 1 argument that
samples are not memorized) as measured numbers: per-sample nearest distances and
relative distances, copy flags calibrated on held-out TEST images, Meehan et al.'s
C_T test and AuthPct. Writes neighbours.png, distances.png, per_sample.csv and
summary.json to <RUN_DIR>/analysis/memorization/ (or --out). See docs/memorization.md.
""")
def memorization(
    gen: Annotated[str, typer.Argument(help="A checkpoint / RUN_DIR (samples are generated), an image folder, "
                                            "or a dataset name.", metavar="GEN", show_default=False)],
    train: Annotated[str, typer.Option("--train", help="Training images: a dataset (digits:train, "
                                                       "cifar10:train) or an image folder.")],
    test: Annotated[str | None, typer.Option("--test", help="Held-out real images (needed for C_T and to "
                                                            "calibrate the copy flags).")] = None,
    features: Annotated[str, typer.Option("--features", help="A feature space, by name in gan_probe.features' "
                                                             "registry: pixels, inception, dinov2, clip, disc (the checkpoint's "
                                                             "discriminator), or any other registered one (an "
                                                             "unknown name lists them all).")] = "pixels",
    n: Annotated[int, typer.Option("--n", "--num-samples", min=1, help="Samples generated from a checkpoint "
                                   "(--num-samples: the same, for torchrun, which takes --n for its own).")] = 1000,
    seed: SeedOpt = 0,
    k: Annotated[int, typer.Option("--k", min=1, help="Nearest training images shown per sample.")] = 5,
    image_size: Annotated[int, typer.Option("--image-size", min=0, help="Resolution when GEN is not a "
                                                                        "checkpoint (0: TRAIN's).")] = 0,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, help="Relative distance: d1 / (alpha * mean "
                                                                  "of the next --n-rel).")] = 0.5,
    n_rel: Annotated[int, typer.Option("--n-rel", min=1, help="Neighbours averaged by the relative "
                                                              "distance.")] = 50,
    copy_quantile: Annotated[float, typer.Option("--copy-quantile", min=0.0, max=1.0,
                                                 help="Flag samples below this quantile of the test images' "
                                                      "relative distances.")] = 0.01,
    ct_cells: Annotated[int, typer.Option("--ct-cells", min=1, help="KMeans cells of the C_T test.")] = 3,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: "
                                                           "<RUN_DIR>/analysis/memorization).")] = None,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = 256,
    data_root: DataRootOpt = None,
    download: DownloadOpt = False,
    class_index: ClassOpt = None,
    psi: PsiOpt = 1.0,
    trust_pickle: TrustPickleOpt = False,
    disc: Annotated[Path | None, typer.Option("--disc", help="The discriminator --features disc / random-disc "
                                              "read (default: GEN's own, a gan-probe checkpoint's D): a card or "
                                              "TorchScript file, for a GEN gan-probe did not train or a "
                                              "folder.")] = None,
) -> None:
    """Which samples copy a training image, and does the model copy or underfit as a whole."""
    from gan_probe.analysis.memorization import MemorizationSettings
    from gan_probe.analysis.memorization_run import run_memorization

    settings = MemorizationSettings(k=k, alpha=alpha, n_rel=n_rel, copy_quantile=copy_quantile,
                                    ct_cells=ct_cells, seed=seed)
    s = run_memorization(source_spec(gen, class_index, psi, trust_pickle), train, test, out=out, features=features, n=n, seed=seed, image_size=image_size,
                         batch_size=batch_size, device=device, data_root=data_root, download=download,
                         settings=settings, disc=model_spec(disc, trust_pickle=trust_pickle) if disc else None,
                         progress=not json_out)
    if s is None:  # torchrun, rank > 0: rank 0 writes and prints
        return
    if json_out:
        typer.echo(json.dumps(s, indent=2))
        return
    _print_table(s)


def _print_table(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v):
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    c = Console()
    t = Table(title=f"memorization: {s['gen']} vs {s['train']} ({s['features']}, {s['image_size']}px)",
              show_header=False)
    t.add_row("samples / train / test", f"{s['n_gen']} / {s['n_train']} / {s['n_test']}")
    t.add_row("C_T (<< 0 copying, >> 0 underfitting)", fmt(s["ct"]))
    cells = [f"{c_['cell']}: {fmt(c_['z'])} ({c_['n_gen']} gen, {c_['n_test']} test)"
             for c_ in s["ct_cells"]]
    if cells:
        t.add_row("C_T cells: Z (points)", "\n".join(cells))
    t.add_row("flagged as likely copies", f"{s['n_flagged']} ({s['flagged_fraction']:.1%})")
    t.add_row("copy threshold (relative distance)", f"{s['copy_threshold']:.4g}: {s['copy_threshold_rule']}")
    t.add_row("AuthPct", f"{s['auth_pct']:.1f}")
    for key, label in (("gen_to_train", "gen -> train distance"), ("test_to_train", "test -> train distance"),
                       ("gen_relative", "gen relative distance"), ("test_relative", "test relative distance")):
        q = s[key]
        if q:
            t.add_row(f"{label} (min / 5% / median / 95%)",
                      f"{fmt(q['q00'])} / {fmt(q['q05'])} / {fmt(q['q50'])} / {fmt(q['q95'])}")
    c.print(t)
    for note in s["notes"]:
        c.print(f"[yellow]note:[/] {note}", highlight=False)
    colour = {"copying": "red", "underfitting": "yellow"}.get(s["verdict"], "green")
    c.print(f"[bold {colour}]{s['verdict_line']}[/]", highlight=False)
    c.print(f"figures and summary.json in {s['out']}", highlight=False)
