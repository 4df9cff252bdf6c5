"""stats: a source's reference statistics (mu, sigma) in a tagged .npz that pytorch-fid reads too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import ClassOpt, JsonOpt, PsiOpt, TrustPickleOpt, app, option_groups, source_spec
from gan_probe.cli.score import FeaturePass


@app.command(epilog="""Examples:

  gan-probe stats digits:train --out ref.npz              # then: gan-probe fid samples.npz ref.npz

  gan-probe stats real/ --out real.npz --dims 2048        # python -m pytorch_fid real.npz fake/ reads it too

  gan-probe stats samples.zip --out gen.npz --json

  gan-probe stats network-snapshot.pkl --trust-pickle --psi 0.7 --n 50000 --out gen.npz   # any model's samples
""")
@option_groups
def stats(
    source: Annotated[str, typer.Argument(
        help="Images: a folder, a .npz image array (arr_0) or .npy, a .zip / .tar of images, a checkpoint, "
             "RUN_DIR or any model (--n samples), or a dataset name[:split].", metavar="SOURCE",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="The .npz to write (mu, sigma and the protocol tags).",
                                      show_default=False)],
    feature_pass: FeaturePass = FeaturePass(),
    class_index: ClassOpt = None,
    psi: PsiOpt = 1.0,
    trust_pickle: TrustPickleOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Reference statistics of SOURCE, tagged with encoder, weights hash, protocol, N and a source fingerprint."""
    from gan_probe.metrics.score import compute_statistics

    result = compute_statistics(source_spec(source, class_index, psi, trust_pickle), out,
                                feature_pass.score_options(json_out))
    if result is None:  # torchrun, rank > 0: rank 0 writes and prints
        return
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    for w in result["warnings"]:
        typer.echo(f"warning: {w}", err=True)
    t = result["tags"]
    typer.echo(f"statistics of {result['source']['source']} (N = {t['n']}, {t['dims']}-d, {t['encoder']}, "
               f"weights {t['weights_sha256'][:12]}) written to {result['out']}")
