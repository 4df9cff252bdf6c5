"""Scores of a generated source against a reference: one feature pass per source for every metric.

``compute_scores(gen, ref, metrics, options)`` returns one JSON-ready dict (the object
``gan-probe score --json`` prints): ``metrics``, ``gen`` / ``ref`` (what each source was),
``protocol`` (extractor, weights, dims, resize, N per side, so numbers stay comparable),
``warnings``, then the keys of every chosen metric (``fid``, ``is`` / ``is_std``, ``kid`` /
``kid_std``, ``precision`` / ``recall``, ``density`` / ``coverage``, ...). Which metrics exist,
what each side must provide and how each is computed is declared in
:mod:`gan_probe.metrics.registry`; this module only opens the sources, extracts what the chosen
metrics consume and hands the sides to them. When both sources are ``.npz`` statistics and the
metrics need nothing else, nothing imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from gan_probe.errors import GanProbeError
from gan_probe.io import check_writable

from gan_probe.metrics.registry import (MetricContext, compute_metrics, default_metrics, get_metric, metric_names,
                                        side_needs)


@dataclass
class ScoreOptions:
    batch_size: int = 50
    device: str = "auto"
    num_workers: int = 2
    n: int = 10_000  # samples generated from a checkpoint
    seed: int = 0
    dims: int = 2048
    weights: str | os.PathLike | None = None
    download: bool = False
    cache: bool = True
    skip_bad: bool = False
    data_root: str | os.PathLike | None = None
    data_download: bool = False
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    dc_k: int = 5
    progress: bool = True
    features: str = "inception"  # the feature space: inception or an encoder (gan_probe.encoders.ENCODERS)
    encoder_weights: str | os.PathLike | None = None  # the encoder's weights file (else searched for)
    protocol: str = "pytorch-fid"  # Inception's resize protocol (gan_probe.features.resize.PROTOCOLS)
    ci: float | None = None  # bootstrap interval level (e.g. 0.95) for every metric computed from features
    ci_rounds: int = 100
    fd_inf: bool = False  # also FD-infinity (Chong & Forsyth 2020)
    per_class: bool = False  # conditional GEN: each class against the same class of REF (gan_probe.metrics.per_class)


def score_spaces(space: str | None = None) -> list[str]:
    """The feature spaces ``score`` can run in: ``inception`` and every encoder. Imports the encoders
    (and torch) only when ``space`` is given and is not ``inception``."""
    if space == "inception":
        return ["inception"]
    from gan_probe.encoders import ENCODERS

    return ["inception", *ENCODERS]


def parse_metrics(metrics: str | Iterable[str] | None = None, space: str = "inception") -> list[str]:
    """Metric names from a comma list (``"fid,kid"``) or a list, checked against the registry
    (:mod:`gan_probe.metrics.registry`) and against feature space ``space``, duplicates dropped;
    None: the space's default metrics."""
    if metrics is None:
        return default_metrics(space)
    parts = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [m.strip().lower() for m in parts if m.strip()]
    known = metric_names()
    bad = [m for m in names if m not in known]
    if bad or not names:
        raise GanProbeError(f"metrics has unknown metric(s) {', '.join(bad) or '(none)'}; "
                            f"choose from {','.join(known)}", param="metrics")
    elsewhere = [m for m in names if not get_metric(m).applies_to(space)]
    if elsewhere:
        hint = {"fid": "fd", "kid": "kd", "fd": "fid", "kd": "kid"}
        alt = [hint[m] for m in elsewhere if m in hint]
        raise GanProbeError(f"metrics {', '.join(elsewhere)} not defined in the {space} feature space ("
                            + "; ".join(f"{m}: {get_metric(m).spaces_text()}" for m in elsewhere) + ")"
                            + (f"; in {space} space ask for {','.join(alt)}" if alt else ""), param="metrics")
    return list(dict.fromkeys(names))


def compute_fid(a: str | os.PathLike, b: str | os.PathLike, options: ScoreOptions | None = None,
                save_stats: str | os.PathLike | None = None) -> dict:
    """FID between two sources (folders, .npz, checkpoints, datasets), as ``gan-probe fid A B``.

    ``a`` takes the GEN role: it is ``result["gen"]`` and the side whose statistics ``save_stats``
    writes; ``b`` is the reference (``result["ref"]``). The FID itself is symmetric."""
    return compute_scores(a, b, ["fid"], options, save_stats=save_stats)


def compute_scores(gen: str | os.PathLike, ref: str | os.PathLike | None, metrics: str | Iterable[str] | None = None,
                   options: ScoreOptions | None = None, save_stats: str | os.PathLike | None = None) -> dict:
    """The chosen metrics (default: the registry's defaults) of ``gen`` against ``ref``, one feature
    pass per source; ``save_stats``: also write GEN's statistics there (pytorch-fid's ``.npz``)."""
    from gan_probe.metrics.sources import open_source

    opts = options or ScoreOptions()
    metrics = check_options(ref is not None, metrics, opts)
    if save_stats:
        if Path(save_stats).suffix != ".npz":
            raise GanProbeError(f"save_stats must be a .npz path (got {save_stats})", param="save_stats")
        check_writable(save_stats)  # before the feature passes, not after
    if opts.per_class:
        if save_stats:
            raise GanProbeError("save_stats is one GEN's statistics; per_class has one per class", param="save_stats")
        from gan_probe.metrics.per_class import compute_per_class

        return compute_per_class(gen, ref, metrics, opts)
    src_kw = dict(n=opts.n, seed=opts.seed, skip_bad=opts.skip_bad, data_root=opts.data_root,
                  download=opts.data_download)
    gen_src = open_source(gen, **src_kw)
    ref_src = open_source(ref, **src_kw) if ref is not None else None
    sides = [(gen_src, _needs(metrics, "gen", gen_src, opts))]
    if ref_src:
        sides.append((ref_src, _needs(metrics, "ref", ref_src, opts)))
    check_sides(sides, metrics, opts)

    if all(s.kind == "npz" and not needs - {"statistics"} for s, needs in sides):
        results = [_npz_side(s) for s, _ in sides]  # the torch-free path
        protocol = {"space": "inception", "extractor": "statistics files (as written)", "dims": int(len(results[0].mu))}
    elif opts.features == "inception":
        results, protocol = _extract_sides([(s, "features" in needs, "logits" in needs) for s, needs in sides],
                                           opts)
    else:
        results, protocol = _encode_sides([s for s, _ in sides], opts)
    from gan_probe.distributed import is_main_process

    if not is_main_process():  # torchrun: the other ranks shared the feature passes; rank 0 scores
        return None
    return scores_from_sides(results[0], results[1] if ref_src else None, metrics, opts, protocol,
                             save_stats=save_stats)


def check_options(has_ref: bool, metrics: str | Iterable[str] | None, opts: ScoreOptions) -> list[str]:
    """Refuse options that cannot work (feature space, protocol, ci, metrics, a missing reference,
    dims) before any work; returns the parsed metric names."""
    if opts.features not in (spaces := score_spaces(opts.features)):
        raise GanProbeError(f"features must be one of {', '.join(spaces)} (got {opts.features!r})", param="features")
    if opts.features == "inception" and opts.protocol != "pytorch-fid":
        from gan_probe.features.resize import get_protocol  # (imports torch: not for the default)

        get_protocol(opts.protocol)  # a bad name fails before any work
    elif opts.protocol != "pytorch-fid":
        raise GanProbeError(f"protocol applies to Inception features only; the {opts.features} encoder has its own "
                            f"fixed preprocessing (got protocol {opts.protocol!r})", param="protocol")
    if opts.ci is not None and not 0 < opts.ci < 1:
        raise GanProbeError(f"ci must be between 0 and 1, e.g. 0.95 (got {opts.ci})", param="ci")
    metrics = parse_metrics(metrics, opts.features)
    if opts.fd_inf and not has_ref:
        raise GanProbeError("ref is required by fd_inf (FD against a reference source)", param="ref")
    if not has_ref and (missing := sorted(m for m in metrics if get_metric(m).needs_ref)):
        raise GanProbeError(f"ref is required by {', '.join(missing)} (compared against a reference source)",
                            param="ref")
    if opts.dims not in (64, 192, 768, 2048):
        raise GanProbeError(f"dims must be one of 64, 192, 768, 2048 (got {opts.dims})", param="dims")
    return metrics


def check_sides(sides, metrics: list[str], opts: ScoreOptions) -> None:
    """Refuse a (source, needs) side that cannot give what the metrics need (statistics-only ``.npz``
    files where features, logits or resampling are needed), before any feature pass."""
    for (src, needs), side in zip(sides, ("gen", "ref")):
        if src.kind == "npz" and opts.features != "inception":
            raise GanProbeError(f"{src.spec} holds only statistics: {opts.features} features need images; give a "
                                f"folder, checkpoint or dataset")
        if src.kind == "npz" and side == "gen" and (opts.ci is not None or opts.fd_inf):
            flag = "ci" if opts.ci is not None else "fd_inf"
            raise GanProbeError(f"{flag} resamples GEN's features, but {src.spec} holds only statistics (mu, sigma); "
                                f"give a folder, checkpoint or dataset", param=flag)
        if src.kind == "npz" and needs - {"statistics"}:
            want = [m for m in metrics if get_metric(m).needs(side) - {"statistics"}]
            raise GanProbeError(f"{src.spec} holds only statistics (mu, sigma): {', '.join(want)} "
                                f"need{'s' if len(want) == 1 else ''} images; give a folder, checkpoint or dataset")


def scores_from_sides(gen_res, ref_res, metrics: list[str], opts: ScoreOptions, protocol: dict,
                      save_stats: str | os.PathLike | None = None) -> dict:
    """The ``score --json`` object from the two sides' statistics / features / logits
    (:class:`gan_probe.metrics.extract.SourceFeatures`; ``ref_res`` None without a reference) and the
    protocol they were extracted under: what :func:`compute_scores` and :class:`gan_probe.Scorer` return."""
    gen_src = gen_res.source
    ref_src = ref_res.source if ref_res is not None else None
    results = [r for r in (gen_res, ref_res) if r is not None]
    out: dict = {"metrics": metrics, "gen": _side_summary(gen_res), "ref": _side_summary(ref_res) if ref_res else None,
                 "protocol": protocol, "warnings": [note for r in results for note in r.notes]}
    if protocol.get("reference_weights") is False:
        out["warnings"].append(f"{protocol['weights']} is not pytorch-fid's weights file (its SHA-256 does not start "
                               "with 6726825d): these numbers are not comparable with pytorch-fid's or published ones")
    if ref_res is not None:
        from gan_probe.metrics.statsfile import protocol_mismatch

        warning = protocol_mismatch(gen_src.spec, _side_tags(gen_res, protocol), ref_src.spec,
                                    _side_tags(ref_res, protocol))
        if warning:
            out["warnings"].append(warning)
    if save_stats:
        from gan_probe.metrics.statsfile import save_statistics

        tags = _side_tags(gen_res, protocol) if gen_src.kind != "npz" else None
        out["saved_stats"] = str(save_statistics(save_stats, gen_res.mu, gen_res.sigma, tags=tags))
    out.update(_uncertainty(gen_res, ref_res, metrics, opts, protocol))  # before the metrics' keys, which come last
    out.update(results_to_scores(gen_res, ref_res, metrics, opts, out["warnings"]))
    return out


def _needs(metrics, side: str, source, opts: ScoreOptions) -> frozenset[str]:
    """What ``side`` must provide: the metrics' needs, and features where ``--ci`` / ``--fd-inf``
    resample them (a reference ``.npz`` stays fixed)."""
    needs = side_needs(metrics, side)
    if source.kind != "npz" and (opts.fd_inf or (opts.ci is not None and any(get_metric(m).bootstrap
                                                                           for m in metrics))):
        needs = needs | {"features"}
    return needs | {"statistics"}


def _uncertainty(gen, ref, metrics, opts: ScoreOptions, protocol: dict) -> dict:
    """N against d for every side (``sample_size``), and when asked the bootstrap intervals (``ci``)
    and FD-infinity (``fd_inf``)."""
    from gan_probe.metrics.fid import check_sample_size

    out: dict = {}
    dims = int(protocol.get("dims") or len(gen.mu))
    covariance = any(m in ("fid", "fd") for m in metrics) or opts.fd_inf
    label = "FID" if opts.features == "inception" else f"FD ({opts.features})"
    checks = []
    for r in (gen, ref):
        if r is None or r.n is None:
            continue
        c = check_sample_size(r.n, dims, label if covariance else ", ".join(m.upper() for m in metrics),
                              uses_covariance=covariance)
        checks.append({"source": r.source.spec, "n": r.n, "dims": dims, "note": c.note, "too_small": c.too_small})
    out["sample_size"] = checks
    if opts.ci is not None:
        out["ci"] = bootstrap_scores(gen, ref, [m for m in metrics if get_metric(m).bootstrap], opts)
    if opts.fd_inf:
        from gan_probe.metrics.uncertainty import statistics_to_fd_infinity

        key = "fid_inf" if opts.features == "inception" else "fd_inf"
        fi = statistics_to_fd_infinity(ref.mu, ref.sigma, gen.features, seed=opts.seed)
        out[key] = fi.value
        out[f"{key}_fit"] = fi.as_dict()
    return out


def bootstrap_scores(gen, ref, metrics: Iterable[str], opts: ScoreOptions) -> dict:
    """Seeded percentile bootstrap intervals (level ``opts.ci``, ``opts.ci_rounds`` rounds) of every
    value of ``metrics``, each round resampling the rows of GEN's features and of REF's (a reference
    given as statistics stays fixed), recomputing the statistics from the resampled rows."""
    from dataclasses import replace

    from gan_probe.metrics.fid import features_to_statistics
    from gan_probe.metrics.uncertainty import features_to_bootstrap_intervals

    metrics = list(metrics)
    if not metrics:
        return {}
    skip = {"kid_std", "kid_subset_size", "kd_std", "kd_subset_size"}

    def side(template, feats):
        if template is None:
            return None
        if feats is None:  # fixed (statistics only)
            return template
        mu, sigma = features_to_statistics(feats)
        return replace(template, mu=mu, sigma=sigma, features=feats, n=len(feats), notes=[])

    def metric(real, fake):
        scores = compute_metrics(side(gen, fake), side(ref, real), metrics, MetricContext(opts, []))
        return {k: v for k, v in scores.items() if k not in skip and isinstance(v, float)}

    ref_feats = ref.features if ref is not None else None
    intervals = features_to_bootstrap_intervals(ref_feats, gen.features, metric, ci=opts.ci, rounds=opts.ci_rounds,
                                                seed=opts.seed)
    return {k: v.as_dict() for k, v in intervals.items()}


def results_to_scores(gen, ref, metrics: Iterable[str], opts: ScoreOptions, notes: list[str]) -> dict:
    """The metric values from the two sides' statistics / features / logits (the registry's compute
    functions, in registry order); warnings are appended to ``notes``."""
    return compute_metrics(gen, ref, metrics, MetricContext(opts, notes))


def _npz_side(source):
    from gan_probe.metrics.extract import SourceFeatures
    from gan_probe.metrics.statsfile import load_statistics

    mu, sigma = load_statistics(source.path)
    return SourceFeatures(source, mu, sigma, None)


def _extract_sides(sides, opts: ScoreOptions):
    from gan_probe.distributed import init_distributed, on_every_rank
    from gan_probe.features.inception import InceptionExtractor, find_inception_weights
    from gan_probe.metrics.extract import ExtractOptions, source_to_features

    d = init_distributed(opts.device)  # under torchrun: this process's device, the group joined
    device = d.device
    # rank 0 finds (or downloads) the weights first; then the others find them (an error on any: on all)
    weights = on_every_rank(lambda: find_inception_weights(opts.weights, download=opts.download,
                                                           progress=opts.progress) if d.main else None, d)
    weights = on_every_rank(lambda: weights or find_inception_weights(opts.weights), d)
    eopts = ExtractOptions(weights=weights, dims=opts.dims, device=str(device), batch_size=opts.batch_size,
                           num_workers=opts.num_workers, cache=opts.cache, progress=opts.progress,
                           protocol=opts.protocol)
    loaded: list = []

    def get_extractor():
        if not loaded:
            loaded.append(InceptionExtractor(weights, device, opts.dims))
        return loaded[0]

    for s, f, lg in sides:  # a statistics file of the wrong size fails before any extraction
        if s.kind == "npz" and not (f or lg) and len(_npz_side(s).mu) != opts.dims:
            raise GanProbeError(f"dims is {opts.dims} but {s.spec} holds {len(_npz_side(s).mu)}-d statistics",
                                param="dims")
    results = [source_to_features(s, eopts, get_extractor, need_features=f, need_logits=lg, dist=d)
               for s, f, lg in sides]
    return results, inception_protocol(weights, opts, device)


def inception_protocol(weights, opts: ScoreOptions, device) -> dict:
    """The ``protocol`` of a result computed with Inception ``weights`` under ``opts`` on ``device``."""
    from gan_probe.features.inception import EXTRACTOR, is_reference_weights, weights_sha256
    from gan_probe.features.resize import get_protocol

    reference = is_reference_weights(weights)
    resize = get_protocol(opts.protocol)
    return {"space": "inception",
            "extractor": EXTRACTOR if reference else f"{EXTRACTOR} [NON-REFERENCE WEIGHTS]",
            "weights": str(weights), "weights_sha256": weights_sha256(weights), "reference_weights": reference,
            "dims": opts.dims, "resize_protocol": resize.name,
            "resize": ("bilinear to 299x299, align_corners=False, no antialias (pytorch-fid)"
                       if resize.name == "pytorch-fid" else resize.description),
            "preprocessing": resize.description, "same_numbers_as": resize.peer,
            "input": "uint8 RGB (grayscale/RGBA/palette converted; generated samples rounded to uint8)",
            "device": str(device)}


def _side_tags(r, protocol: dict) -> dict:
    """The tags of one side's statistics: a statistics file's own (empty if another tool wrote it), or
    the space, encoder, weights, resize protocol this run extracted with, the side's N and its source
    fingerprint."""
    import hashlib
    import json

    from gan_probe.metrics.statsfile import load_tags

    if r.source.kind == "npz":
        return load_tags(r.source.path)
    from gan_probe.features.inception import EXTRACTOR, PREPROCESSING

    space = protocol.get("space", "inception")
    fingerprint = hashlib.sha256(json.dumps(r.source.fingerprint, sort_keys=True, default=str).encode()).hexdigest()
    return {"space": space, "encoder": EXTRACTOR if space == "inception" else protocol["extractor"],
            "weights_sha256": protocol["weights_sha256"], "protocol": protocol.get("resize_protocol", space),
            "preprocessing": protocol.get("preprocessing", PREPROCESSING), "dims": str(protocol["dims"]),
            "n": str(r.n), "source": r.source.spec, "source_fingerprint": fingerprint}


def compute_statistics(source: str | os.PathLike, out: str | os.PathLike,
                       options: ScoreOptions | None = None) -> dict:
    """Write ``source``'s reference statistics to ``out`` (``.npz``: ``mu``, ``sigma``, readable by
    pytorch-fid, plus the tags of :mod:`gan_probe.metrics.statsfile`), as ``gan-probe stats``; returns
    what was written (path, source, kind, N and the tags) and any warnings."""
    from gan_probe.metrics.sources import open_source
    from gan_probe.metrics.statsfile import save_statistics

    opts = options or ScoreOptions()
    if Path(out).suffix != ".npz":
        raise GanProbeError(f"out must be a .npz path (got {out})", param="out")
    check_writable(out)
    if opts.dims not in (64, 192, 768, 2048):
        raise GanProbeError(f"dims must be one of 64, 192, 768, 2048 (got {opts.dims})", param="dims")
    src = open_source(source, n=opts.n, seed=opts.seed, skip_bad=opts.skip_bad, data_root=opts.data_root,
                      download=opts.data_download)
    if src.kind == "npz":
        raise GanProbeError(f"{src.spec} already holds statistics; give images (a folder, array, archive, "
                            f"checkpoint or dataset)")
    (res,), protocol = _extract_sides([(src, False, False)], opts)
    from gan_probe.distributed import is_main_process

    if not is_main_process():  # torchrun: rank 0 alone writes
        return None
    tags = _side_tags(res, protocol)
    path = save_statistics(out, res.mu, res.sigma, tags=tags)
    warnings = list(res.notes)
    if protocol.get("reference_weights") is False:
        warnings.append(f"{protocol['weights']} is not pytorch-fid's weights file: these statistics are not "
                        "comparable with pytorch-fid's or published ones")
    return {"out": str(path), "source": _side_summary(res), "tags": tags, "warnings": warnings}


def _encode_sides(sources, opts: ScoreOptions):
    """Every side's features in an encoder's space (``opts.features``), through the encoders' content-keyed
    cache; statistics (for FD) computed from them."""
    from gan_probe.distributed import init_distributed, on_every_rank
    from gan_probe.encoders import get_encoder
    from gan_probe.encoders.extract import encode_source
    from gan_probe.metrics.extract import SourceFeatures
    from gan_probe.metrics.fid import features_to_statistics

    d = init_distributed(opts.device)  # under torchrun: this process's device, the group joined
    device = d.device
    encoder = on_every_rank(lambda: get_encoder(opts.features, weights=opts.encoder_weights, device=device), d)
    results = []
    for s in sources:
        e = encode_source(s, encoder, batch_size=opts.batch_size, num_workers=opts.num_workers, cache=opts.cache,
                          progress=opts.progress, dist=d)
        mu, sigma = features_to_statistics(e.features)
        results.append(SourceFeatures(s, mu, sigma, e.n, e.features, None, e.from_cache, list(e.notes)))
    if results:
        results[0].notes[:0] = list(encoder.notes)  # the weights' provenance warnings, once
    return results, encoder_protocol(encoder, device)


def encoder_protocol(encoder, device) -> dict:
    """The ``protocol`` of a result computed with ``encoder`` (:class:`gan_probe.encoders.Encoder`) on ``device``."""
    p = encoder.provenance()
    return {"space": p["space"], "extractor": p["network"], "weights": p["weights"],
                "weights_sha256": p["weights_sha256"], "weights_format": p["weights_format"],
                "published_sha256": p["published_sha256"], "matches_published": p["matches_published"],
                "dims": p["dim"], "preprocessing": p["preprocessing"], "precision": p["precision"],
                "device": str(device)}


def _side_summary(r) -> dict:
    s = r.source
    d = {"source": s.spec, "kind": s.kind, "n": r.n, "cached": r.from_cache}
    if s.kind == "checkpoint":
        d.update(checkpoint=str(s.path), seed=s.seed)
    if s.skipped:
        d["skipped"] = list(s.skipped)
    return d


# ScoreOptions fields that are command-line flags of `fid`/`score`, and the flag each is spelled as there
_FLAGS = {"batch_size": "batch_size", "device": "device", "num_workers": "num_workers", "n": "n", "seed": "seed",
          "dims": "dims", "weights": "inception_weights", "download": "download", "skip_bad": "skip_bad",
          "data_root": "data_root", "features": "features", "encoder_weights": "weights", "protocol": "protocol",
          "ci": "ci", "ci_rounds": "ci_rounds", "fd_inf": "fd_inf", "per_class": "per_class"}


def run_score(gen: str | os.PathLike, ref: str | os.PathLike | None, metrics: str | Iterable[str] | None = None,
              options: ScoreOptions | None = None, *, command: str = "score", save_stats: str | os.PathLike | None = None,
              out: str | os.PathLike | None = None) -> dict:
    """``gan-probe score GEN --ref REF`` (``command="score"``) or ``gan-probe fid GEN REF``
    (``command="fid"``) as one call: the scores of :func:`compute_scores` / :func:`compute_fid` in the
    run contract's summary (:mod:`gan_probe.runs`), written to ``out/summary.json``. ``score`` of a
    training run writes to ``RUN_DIR/analysis/score`` unless ``out`` says otherwise; ``fid`` writes
    only where ``out`` says."""
    from dataclasses import asdict

    from gan_probe import runs

    opts = options or ScoreOptions()
    if command == "fid":
        scores = compute_fid(gen, ref, opts, save_stats=save_stats)
        if scores is None:  # torchrun, rank > 0: rank 0 writes and prints
            return None
        positional, named = (gen, ref), {}
    elif command == "score":
        scores = compute_scores(gen, ref, metrics, opts, save_stats=save_stats)
        if scores is None:  # torchrun, rank > 0: rank 0 writes and prints
            return None
        positional, named = (gen,), {"ref": ref, "metrics": scores["metrics"]}
        out = out if out is not None else default_out_dir(gen)
    else:
        raise ValueError(f"command is fid or score, not {command!r}")
    defaults = ScoreOptions()
    flags = {flag: getattr(opts, field) for field, flag in _FLAGS.items() if getattr(opts, field) != getattr(defaults, field)}
    if not opts.cache:
        flags["no_cache"] = True
    argv = runs.command_line(command, *positional, **named, **flags, save_stats=save_stats, out=out)
    settings = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in asdict(opts).items() if k != "progress"}
    summary = runs.new_summary(command, scores, argv=argv, settings=settings,
                               provenance=runs.provenance(gen=str(gen), ref=None if ref is None else str(ref)),
                               seed=opts.seed, files={"stats": scores["saved_stats"]} if save_stats else {})
    if out is not None:
        summary["summary_file"] = str(runs.write_summary(out, summary))
    return summary


def default_out_dir(gen: str | os.PathLike) -> Path | None:
    """``<RUN_DIR>/analysis/score`` when GEN is a RUN_DIR or one of its checkpoints; ``analysis/score``
    beside a loose model file (TorchScript, card, pickle), as every other analysis of it; else None."""
    from gan_probe import runs

    run_dir = runs.find_run_dir(gen)
    if run_dir is None and Path(gen).is_file():
        from gan_probe.models.sources import is_foreign

        run_dir = Path(gen).parent if is_foreign(gen) else None
    return run_dir / runs.ANALYSIS_DIR / "score" if run_dir is not None else None
