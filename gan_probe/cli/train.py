"""train, sample, info, download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import (BatchSizeOpt, CheckpointArg, DataRootOpt, DeviceOpt, JsonOpt, ModelRun, SeedOpt,
                               TrustPickleOpt, app, model_spec, option_groups, registry_help)


def _dataset_option() -> dict:
    """--dataset's help, from the dataset registry (gan_probe.data.DATASETS)."""
    from gan_probe.data import DATASETS

    names = [name + (f"[:{'|'.join(i.splits)}]" if i.splits else f":SPLIT (e.g. {name}:{i.default_split})")
             for name, i in DATASETS.items()]
    return {"help": " | ".join(names) + " | an image folder (without :SPLIT, the dataset's default split)."}


def _download_dataset_argument() -> dict:
    """download's DATASET help: the registry's downloadable datasets."""
    from gan_probe.data import DATASETS

    return {"help": " | ".join(name for name, i in DATASETS.items() if i.downloadable) + "."}


@app.command(cls=registry_help(dataset=_dataset_option), epilog="""Examples:

  gan-probe train --dataset digits --epochs 20 --out runs/digits        # offline, 2 CPU cores: ~2 min

  gan-probe train --dataset cifar10 --download --out runs/cifar         # paper Figs. 2-3 style samples per epoch

  gan-probe train --model-config reference_models/configs/lsun_bedrooms_64.json --dataset lsun:bedroom_train

  gan-probe train --out runs/digits --resume --epochs 40                # continue a run

  gan-probe train --dataset cifar10 --deterministic --out runs/cifar    # bitwise repeatable on a GPU (slower)

  torchrun --nproc_per_node 4 -m gan_probe train --dataset celeba       # several GPUs

  gan-probe train --dataset digits --eval-every 100 --eval-n 500 --eval-ref digits:train   # FID + D's probe over training
""")
def train(
    dataset: Annotated[str, typer.Option(help="A dataset name[:split] or an image folder.")] = "digits",
    image_size: Annotated[int, typer.Option(help="32 or 64 (any power of two >= 8); 0 = the dataset's default.")] = 0,
    epochs: Annotated[int, typer.Option(min=0, help="Passes over the data.")] = 25,
    max_steps: Annotated[int, typer.Option(min=0, help="Stop after this many steps in all (0 = use --epochs).")] = 0,
    batch_size: BatchSizeOpt = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate (the paper: 0.0002).")] = 2e-4,
    beta1: Annotated[float, typer.Option(help="Adam beta1 (the paper: 0.5).")] = 0.5,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    out: Annotated[Path, typer.Option("--out", help="RUN_DIR to write config, log, samples and checkpoints.")]
    = Path("runs/dcgan"),
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Write checkpoints/last.pt every N steps.")] = 500,
    log_every: Annotated[int, typer.Option(min=1, help="Log a JSON line every N steps.")] = 10,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    nz: Annotated[int, typer.Option(min=1, help="Latent size.")] = 100,
    ngf: Annotated[int, typer.Option(min=1, help="G width (last hidden layer); doubles per layer towards z.")] = 64,
    ndf: Annotated[int, typer.Option(min=1, help="D width (first layer); doubles per layer.")] = 64,
    kernel_size: Annotated[int, typer.Option(min=1, help="Conv kernel (pytorch/examples: 4; the authors: 5).")] = 4,
    z_dist: Annotated[str, typer.Option(help="uniform (the paper: U(-1, 1)) or normal.")] = "uniform",
    model_config: Annotated[Path | None, typer.Option(help="A JSON model config (see reference_models/configs/).")]
    = None,
    num_workers: Annotated[int, typer.Option(min=0, help="Data-loading processes (image datasets).")] = 2,
    amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA GPUs with native bf16 (compute capability >= 8.0); "
                                           "ignored elsewhere.")] = True,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic algorithms only, cuDNN "
                                                "autotuner off: seeded and resumed GPU runs repeat bit for bit "
                                                "(slower).")] = False,
    data_root: DataRootOpt = None,
    download: Annotated[bool, typer.Option("--download", help="Download a missing dataset (off by default); with "
                                           "--eval-every, also the FID Inception weights.")] = False,
    eval_every: Annotated[int, typer.Option(min=0, help="Score G every N steps and at the end (0 = never): "
                                            "log.jsonl lines with \"kind\": \"eval\", checkpoints/best.pt.")] = 0,
    eval_n: Annotated[int, typer.Option(min=2, help="Samples per evaluation (the same latents each time).")] = 1000,
    eval_ref: Annotated[str, typer.Option(help="Reference SOURCE for the evaluations, as score --ref (a dataset "
                                          "name, image folder, .npz statistics, ...).")] = "",
    eval_features: Annotated[str, typer.Option(help="Feature space of the evaluations, as score --features.")]
    = "inception",
    eval_metrics: Annotated[str, typer.Option(help="Comma list, as score --metrics (default: score's defaults "
                                              "for the space); best.pt follows the first.")] = "",
    eval_weights: Annotated[str, typer.Option(help="Weights file of the --eval-features network (default: "
                                              "searched for as score does; --download fetches Inception's).")] = "",
    eval_probe: Annotated[bool | None, typer.Option("--eval-probe/--no-eval-probe", help="Also the linear-probe "
                                                    "accuracy of D's features and of a random D (digits only; "
                                                    "default: on for digits with --eval-every).",
                                                    show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train the DCGAN paper's reference model (Radford et al. 2015, section 4)."""
    from gan_probe.train import TrainConfig, train as run_train

    model = _read_model_config(model_config) if model_config else {}
    cfg = TrainConfig(dataset=dataset, image_size=image_size, epochs=epochs, max_steps=max_steps,
                      batch_size=batch_size, lr=lr, beta1=beta1, seed=seed, device=device, out=str(out),
                      checkpoint_every=checkpoint_every, log_every=log_every, num_workers=num_workers,
                      data_root=str(data_root or ""), download=download, amp=amp, deterministic=deterministic,
                      nz=nz, ngf=ngf, ndf=ndf, kernel_size=kernel_size, z_dist=z_dist, model_config=model,
                      eval_every=eval_every, eval_n=eval_n, eval_ref=eval_ref, eval_features=eval_features,
                      eval_metrics=eval_metrics, eval_weights=eval_weights, eval_probe=eval_probe)
    from gan_probe.preemption import PREEMPTED_EXIT_CODE, Preempted

    try:
        run_dir = run_train(cfg, resume=resume, progress=not quiet)
    except Preempted as e:  # a scheduler's SIGTERM / SIGUSR1: checkpoint written, exit 75 to be requeued
        typer.echo(f"preempted: {e}", err=True)
        raise typer.Exit(PREEMPTED_EXIT_CODE) from None
    typer.echo(f"run written to {run_dir}")


def _read_model_config(path: Path) -> dict:
    from gan_probe.errors import GanProbeError

    try:
        d = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise GanProbeError(f"model config not found: {path}") from e
    except json.JSONDecodeError as e:
        raise GanProbeError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from e
    model = d.get("model", d)
    if not isinstance(model, dict):
        raise GanProbeError(f"{path}: expected a JSON object with the model config")
    from gan_probe.models import DCGANConfig

    return DCGANConfig.from_dict(model).to_dict()  # validated here, before any work starts


@app.command(epilog="""Examples:

  gan-probe sample reference_models/digits --n 64 --out samples/ --grid

  gan-probe sample runs/cifar --n 10000 --out fake/ --seed 1 && gan-probe fid cifar10:test fake/

  gan-probe sample runs/cifar --n 50000 --out samples.npz && gan-probe fid samples.npz ref.npz   # one array
""")
@option_groups
def sample(
    checkpoint: CheckpointArg,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of samples.")] = 64,
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG files (000000.png, ...), or a .npz "
                                      "(arr_0: N x H x W x 3 uint8, ADM's format) or .npy file for one array.")]
    = Path("samples"),
    seed: SeedOpt = 0,
    grid: Annotated[bool, typer.Option("--grid", help="Also write the first 64 as OUT-grid.png.")] = False,
    run: ModelRun = ModelRun(),
) -> None:
    """Write N seeded samples of a checkpoint (or any model) as PNG files, or one .npz/.npy array (G in eval mode)."""
    from gan_probe.device import resolve_device
    from gan_probe.errors import GanProbeError
    from gan_probe.sampling import ARRAY_SUFFIXES, sample_to_array, sample_to_folder

    if out.suffix.lower() in ARRAY_SUFFIXES:
        if grid:
            raise GanProbeError("--grid writes beside a folder of PNGs; drop it with --out FILE.npz / .npy")
        result = sample_to_array(run.spec(checkpoint), out, n, seed, run.batch_size, resolve_device(run.device))
        typer.echo(f"wrote {result['n']} samples to {result['out']} ({' x '.join(map(str, result['shape']))} uint8)")
        return
    result = sample_to_folder(run.spec(checkpoint), out, n, seed, run.batch_size, resolve_device(run.device), grid)
    typer.echo(f"wrote {result['n']} samples to {result['out']}" + (f" and {result['grid']}" if grid else ""))


@app.command(epilog="""Examples:

  gan-probe info reference_models/digits                  # a RUN_DIR: its checkpoints/last.pt

  gan-probe info runs/cifar/checkpoints/last.pt --json    # one JSON object

  gan-probe info mygan/D.json                             # any model: each network's sizes, layers, parameters

  gan-probe info network-snapshot.pkl --trust-pickle      # a StyleGAN pickle: G_ema and D
""")
def info(checkpoint: CheckpointArg, json_out: JsonOpt = False, trust_pickle: TrustPickleOpt = False) -> None:
    """What a checkpoint holds: config, dataset, image size, step, epoch (any other model: what gan-probe reads of it)."""
    from gan_probe.train import run_summary

    s = run_summary(model_spec(checkpoint, trust_pickle=trust_pickle))
    if json_out:
        typer.echo(json.dumps(s, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    if "networks" in s:  # a model gan-probe did not train
        for net in s["networks"]:
            t = Table(title=f"{s['checkpoint']}: {net['kind']} ({net['source']})", show_header=False)
            keys = (("z_dim", "z_shape", "z_dist") if net["kind"] == "generator" else ("layers",))
            for key in ("image_size", "channels", *keys, "num_classes", "output_range"):
                t.add_row(key, str(net[key]))
            t.add_row("parameters", f"{net['parameters']:,}")
            t.add_row("fingerprint", net["fingerprint"][:16])
            Console().print(t)
        return
    t = Table(title=s["checkpoint"], show_header=False)
    for key in ("dataset", "image_size", "channels", "nz", "z_dist", "step", "epoch", "d_feature_dim"):
        t.add_row(key, str(s[key]))
    t.add_row("G widths", str(s["model"]["g_channels"]))
    t.add_row("D widths / strides", f"{s['model']['d_channels']} / {s['model']['d_strides']}")
    t.add_row("kernel", str(s["model"]["kernel_size"]))
    t.add_row("parameters", f"G {s['parameters']['G']:,}  D {s['parameters']['D']:,}")
    Console().print(t)


@app.command(cls=registry_help(dataset=_download_dataset_argument), epilog="""Examples:

  gan-probe download cifar10                              # to the default data root ($GAN_PROBE_DATA_ROOT)

  gan-probe download svhn --data-root /data               # train, test and extra
""")
def download(
    dataset: Annotated[str, typer.Argument(help="A downloadable dataset name.", metavar="DATASET")],
    data_root: DataRootOpt = None,
) -> None:
    """Download a dataset (every split) with torchvision, to --data-root."""
    from gan_probe.data import download as fetch

    root = fetch(dataset, data_root)
    typer.echo(f"{dataset} is in {root}")
