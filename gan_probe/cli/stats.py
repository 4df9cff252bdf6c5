"""stats: a source's reference statistics (mu, sigma) in a tagged .npz that pytorch-fid reads too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import BatchSizeOpt, DataRootOpt, DeviceOpt, JsonOpt, SeedOpt, app
from gan_probe.cli.score import (DimsOpt, NOpt, NoCacheOpt, NumWorkersOpt, ProtocolOpt, SkipBadOpt,
                                 WeightsDownloadOpt, WeightsOpt, _options)


@app.command(epilog="""Examples:

  gan-probe stats digits:train --out ref.npz              # then: gan-probe fid samples.npz ref.npz

  gan-probe stats real/ --out real.npz --dims 2048        # python -m pytorch_fid real.npz fake/ reads it too

  gan-probe stats samples.zip --out gen.npz --json
""")
def stats(
    source: Annotated[str, typer.Argument(
        help="Images: a folder, a .npz image array (arr_0) or .npy, a .zip / .tar of images, a checkpoint or "
             "RUN_DIR (--n samples), or a dataset name[:split].", metavar="SOURCE", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="The .npz to write (mu, sigma and the protocol tags).",
                                      show_default=False)],
    batch_size: BatchSizeOpt = 50,
    device: DeviceOpt = "auto",
    num_workers: NumWorkersOpt = 2,
    n: NOpt = 10_000,
    seed: SeedOpt = 0,
    inception_weights: WeightsOpt = None,
    download: WeightsDownloadOpt = False,
    dims: DimsOpt = 2048,
    protocol: ProtocolOpt = "pytorch-fid",
    no_cache: NoCacheOpt = False,
    skip_bad: SkipBadOpt = False,
    data_root: DataRootOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Reference statistics of SOURCE, tagged with encoder, weights hash, protocol, N and a source fingerprint."""
    from gan_probe.metrics.score import compute_statistics

    opts = _options(batch_size, device, num_workers, n, seed, dims, inception_weights, download, no_cache,
                    skip_bad, data_root, json_out, protocol=protocol)
    result = compute_statistics(source, out, opts)
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
