"""fid, score: sample-quality metrics with pytorch-fid's Inception network and numbers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from gan_probe.cli.app import (BatchSizeOpt, ClassOpt, DataRootOpt, DeviceOpt, JsonOpt, OptionGroup, PsiOpt, SeedOpt,
                               TrustPickleOpt, app, option_groups, registry_help, source_spec)

SOURCE_HELP = ("An image folder (recursive), a .npz of statistics (mu, sigma: pytorch-fid, clean-fid, ADM, "
               "gan-probe stats), a .npz image array (arr_0) or .npy, a .zip / .tar of images, a checkpoint or "
               "RUN_DIR (samples --n images), or a dataset name[:split] (digits, cifar10:test).")
NumWorkersOpt = Annotated[int, typer.Option("--num-workers", min=0, help="Image-decoding worker processes.")]
NOpt = Annotated[int, typer.Option("--n", "--num-samples", min=2, help="Samples to generate when a source is a "
                                   "checkpoint (--num-samples: the same, for torchrun, which takes --n for its own).")]
SaveStatsOpt = Annotated[Path | None, typer.Option("--save-stats", help="Also write the (first/GEN) source's "
                                                   "statistics to OUT.npz (pytorch-fid's format).")]
WeightsOpt = Annotated[Path | None, typer.Option(
    "--inception-weights", help="pt_inception-2015-12-05-6726825d.pth (default: $GAN_PROBE_INCEPTION_WEIGHTS, "
                                "then the torch hub cache).")]
WeightsDownloadOpt = Annotated[bool, typer.Option("--download", help="Download the Inception weights (~95 MB) "
                                                  "into the torch hub cache if missing.")]
DimsOpt = Annotated[int, typer.Option("--dims", help="Feature dimension: 2048 (pool3), 768, 192 or 64.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the statistics cache.")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning.")]
ProtocolOpt = Annotated[str, typer.Option("--protocol", help="Inception's resize: pytorch-fid (bilinear on the "
                                         "float tensor, pytorch-fid's numbers) or clean (PIL bicubic antialiased, "
                                         "clean-fid's mode='clean'). See docs/metrics.md.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Folder for summary.json (score: default "
                                             "<RUN_DIR>/analysis/score when GEN is a run).")]


@dataclasses.dataclass(frozen=True)
class FeaturePass(OptionGroup):
    """The options of fid, score and stats that say how sources are read and run through the network."""

    batch_size: BatchSizeOpt = 50
    device: DeviceOpt = "auto"
    num_workers: NumWorkersOpt = 2
    n: NOpt = 10_000
    seed: SeedOpt = 0
    inception_weights: WeightsOpt = None
    download: WeightsDownloadOpt = False
    dims: DimsOpt = 2048
    protocol: ProtocolOpt = "pytorch-fid"
    no_cache: NoCacheOpt = False
    skip_bad: SkipBadOpt = False
    data_root: DataRootOpt = None

    def score_options(self, json_out: bool, **more):
        """The library's :class:`gan_probe.metrics.score.ScoreOptions` (progress bars unless --json)."""
        from gan_probe.metrics.score import ScoreOptions

        return ScoreOptions(batch_size=self.batch_size, device=self.device, num_workers=self.num_workers, n=self.n,
                            seed=self.seed, dims=self.dims, weights=self.inception_weights, download=self.download,
                            protocol=self.protocol, cache=not self.no_cache, skip_bad=self.skip_bad,
                            data_root=self.data_root, progress=not json_out, **more)


@app.command(epilog="""Examples:

  gan-probe fid real/ fake/                                # two image folders (recursive, any size)

  gan-probe fid cifar10:test runs/cifar --n 10000          # a dataset against 10k seeded samples of a run

  gan-probe fid real/ fake/ --save-stats real.npz && gan-probe fid real.npz fake/     # reuse the real side

  gan-probe fid real.npz fake.npz --json                   # .npz files from pytorch-fid work too (no torch import)

  gan-probe fid real/ fake/ --inception-weights ~/pt_inception-2015-12-05-6726825d.pth   # offline

  gan-probe fid real/ fake/ --protocol clean               # clean-fid's resize (mode='clean')
""")
@option_groups
def fid(
    a: Annotated[str, typer.Argument(help=SOURCE_HELP, metavar="A", show_default=False)],
    b: Annotated[str, typer.Argument(help="The other source (same kinds).", metavar="B", show_default=False)],
    feature_pass: FeaturePass = FeaturePass(),
    save_stats: SaveStatsOpt = None,
    out: OutOpt = None,
    class_index: ClassOpt = None,
    psi: PsiOpt = 1.0,
    trust_pickle: TrustPickleOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Fréchet Inception Distance between A and B: pytorch-fid's network, weights and numbers."""
    from gan_probe.metrics.score import run_score

    opts = feature_pass.score_options(json_out)
    a, b = _model_sides(a, b, class_index, psi, trust_pickle)
    _emit(run_score(a, b, None, opts, command="fid", save_stats=save_stats, out=out), json_out, "FID")


def _model_sides(a: str, b: str, class_index, psi, trust_pickle):
    """fid's sides, each with --class / --psi / --trust-pickle when it names a model (either may be one)."""
    if source_spec(a, class_index, psi, trust_pickle) is a:  # no model option: nothing to look at (two .npz
        return [a, b]                                            # files stay torch-free)
    from gan_probe.errors import GanProbeError
    from gan_probe.models.sources import names_model

    sides = [source_spec(x, class_index, psi, trust_pickle) if names_model(x) else x for x in (a, b)]
    if all(isinstance(x, str) for x in sides):
        raise GanProbeError("--class, --psi and --trust-pickle apply to a generator, and neither A nor B is a model")
    return sides


def _metrics_option() -> dict:
    """--metrics' help and the default it shows, from the metric registry (read when the command runs).
    The value stays None: the --features space's defaults are chosen when the command runs."""
    from gan_probe.metrics.registry import metrics_help

    return {"help": metrics_help(), "show_default": False}  # the help names the defaults per space


@app.command(cls=registry_help(metrics=_metrics_option), epilog="""Examples:

  gan-probe score runs/digits --ref digits:test --metrics fid,is,kid,pr,dc --n 2000

  gan-probe score fake/ --ref real/ --metrics fid,kid --json

  gan-probe score fake/ --metrics is                       # Inception Score needs no reference

  gan-probe score runs/cifar --ref cifar10:test --save-stats gen.npz   # summary in runs/cifar/analysis/score/

  gan-probe score fake/ --ref real/ --features dinov2 --metrics fd,kd,pr,dc --ci 0.95   # FD-DINOv2

  gan-probe score fake/ --ref real/ --features clip --metrics cmmd                      # CMMD

  gan-probe score fake/ --ref real/ --metrics fid --fd-inf                             # FID-infinity

  gan-probe score G.json --ref real_by_class/ --per-class --metrics fid              # intra-FID (conditional G)
""")
@option_groups
def score(
    ctx: typer.Context,
    gen: Annotated[str, typer.Argument(help="Generated images: " + SOURCE_HELP, metavar="GEN",
                                         show_default=False)],
    ref: Annotated[str | None, typer.Option("--ref", help="Reference (real) source, same kinds as GEN.")] = None,
    metrics: Annotated[str | None, typer.Option("--metrics", help="Comma list of metrics (see gan_probe.metrics."
                                                "registry).")] = None,
    feature_pass: FeaturePass = FeaturePass(),
    features: Annotated[str, typer.Option("--features", help="Feature space the metrics run in: inception "
                                          "(pytorch-fid's network), dinov2 (DINOv2 ViT-L/14) or clip (CLIP "
                                          "ViT-L/14@336). See docs/metrics.md, 'which encoder, when'.")] = "inception",
    weights: Annotated[Path | None, typer.Option("--weights", help="The dinov2/clip encoder's weights file (default: "
                                                 "$GAN_PROBE_DINOV2_WEIGHTS / $GAN_PROBE_CLIP_WEIGHTS, then the torch "
                                                 "hub, Hugging Face and timm caches; docs/encoders.md).")] = None,
    ci: Annotated[float | None, typer.Option("--ci", help="Add a seeded bootstrap interval at this level (e.g. "
                                             "0.95) to every metric computed from features.")] = None,
    ci_rounds: Annotated[int, typer.Option("--ci-rounds", min=2, help="Bootstrap rounds for --ci.")] = 100,
    fd_inf: Annotated[bool, typer.Option("--fd-inf", help="Also FD-infinity: FD extrapolated to infinitely many "
                                         "GEN samples (Chong & Forsyth 2020).")] = False,
    save_stats: SaveStatsOpt = None,
    out: OutOpt = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Conditional GEN: each class's metrics against "
                                            "the same class of a labelled REF (a dataset, or a folder with one "
                                            "sub-folder per class), and their mean (intra-FID).")] = False,
    class_index: ClassOpt = None,
    psi: PsiOpt = 1.0,
    trust_pickle: TrustPickleOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """FID, Inception Score, KID, precision/recall, density/coverage in one feature pass per source
    (Inception by default; DINOv2 or CLIP with --features)."""
    from gan_probe.metrics.score import run_score

    opts = feature_pass.score_options(json_out, features=features, encoder_weights=weights, ci=ci, ci_rounds=ci_rounds,
                                      fd_inf=fd_inf, per_class=per_class)
    gen = source_spec(gen, class_index, psi, trust_pickle)
    from click.core import ParameterSource

    if ctx.get_parameter_source("metrics") in (ParameterSource.DEFAULT, None):
        metrics = None  # the --features space's default metrics
    _emit(run_score(gen, ref, metrics, opts, save_stats=save_stats, out=out), json_out, "Scores")


def _emit(result: dict | None, json_out: bool, title: str) -> None:
    if result is None:  # torchrun, rank > 0: rank 0 prints
        return
    saved = result.pop("summary_file", None)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_table(result, title, Path(saved) if saved else None)


def _print_table(result: dict, title: str, saved: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from gan_probe.metrics.registry import table_rows

    console = Console()
    err = Console(stderr=True)
    for w in result["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    p = result["protocol"]
    space = p.get("space", "inception")
    sha = p.get("weights_sha256")
    where = f"{space}" + (f", sha256 {sha[:12]}" if sha else "") + (f", {p['resize_protocol']}"
                                                                    if p.get("resize_protocol") else "")
    if result.get("per_class"):
        from gan_probe.metrics.per_class import per_class_table

        columns, rows = per_class_table(result)
        t = Table(title=f"{title} per class (mean = intra-class mean; {where})", show_header=True)
        for i, c in enumerate(columns):
            t.add_column(c, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*r)
        console.print(t)
        _print_sides(console, result, title, p, sha, space)
        if saved:
            console.print(f"summary written to {saved}", highlight=False)
        return
    t = Table(title=title, show_header=True)
    t.add_column("metric")
    t.add_column("value" + (f" [{result['ci'] and next(iter(result['ci'].values()))['ci']:.0%} CI]"
                            if result.get("ci") else ""), justify="right")
    t.add_column("space (weights, protocol)")
    for label, value in table_rows(result):
        t.add_row(label, value, where)
    for key in ("fid_inf", "fd_inf"):
        if result.get(key) is not None:
            t.add_row("FID∞" if key == "fid_inf" else "FD∞", f"{result[key]:.4f}", where)
    console.print(t)
    for c in result.get("sample_size", []):
        style = "[yellow]too small:[/] " if c["too_small"] else ""
        console.print(f"{style}{c['source']}: {c['note']}", highlight=False, soft_wrap=True)
    _print_sides(console, result, title, p, sha, space)
    if result.get("saved_stats"):
        console.print(f"statistics written to {result['saved_stats']}", highlight=False)
    if saved:
        console.print(f"summary written to {saved}", highlight=False)


def _print_sides(console, result: dict, title: str, p: dict, sha, space: str) -> None:
    names = ("A", "B") if title == "FID" else ("GEN", "REF")  # fid A B / score GEN --ref REF
    sides = [(names[0], result["gen"])]
    if result.get("ref"):
        sides.append((names[1], result["ref"]))
    console.print(f"extractor: {p['extractor']}, {p['dims']}-d" + (f"; resize: {p['resize']}" if "resize" in p else ""),
                  highlight=False, soft_wrap=True)
    if sha:
        console.print(f"weights: {p['weights']} (sha256 {sha})", highlight=False, soft_wrap=True)
    if p.get("preprocessing") and space != "inception":
        console.print(f"preprocessing: {p['preprocessing']}", highlight=False, soft_wrap=True)
    for name, s in sides:
        n = "statistics file" if s["n"] is None else f"N = {s['n']}"
        extra = f", seed {s['seed']}" if "seed" in s else ""
        if "n_per_class" in s:
            n = f"N = {s['n_per_class']} per class"
        console.print(f"{name}: {s['source']} ({s['kind']}, {n}{extra}{', cached' if s['cached'] else ''})",
                      highlight=False, soft_wrap=True)
