"""Scores of a generated source against a reference: one Inception pass per source for every metric.

``compute_scores(gen, ref, metrics, options)`` returns one JSON-ready dict (the object
``gan-probe score --json`` prints): ``fid``, ``is`` / ``is_std``, ``kid`` / ``kid_std``,
``precision`` / ``recall``, ``density`` / ``coverage``, plus the protocol (extractor, weights,
dims, resize, N per side) so numbers stay comparable, and any warnings. When both sources are
``.npz`` statistics nothing imports torch.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from gan_probe.errors import GanProbeError
from gan_probe.io import check_writable

METRICS = ("fid", "is", "kid", "pr", "dc")
NEEDS_REF = {"fid", "kid", "pr", "dc"}


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


def parse_metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise GanProbeError(f"unknown metric(s) {', '.join(bad) or '(none)'}; choose from {','.join(METRICS)}")
    return list(dict.fromkeys(names))


def compute_fid(a: str | os.PathLike, b: str | os.PathLike, options: ScoreOptions | None = None) -> dict:
    """FID between two sources (folders, .npz, checkpoints, datasets): ``gan-probe fid A B``."""
    return compute_scores(b, a, ["fid"], options)


def compute_scores(gen: str | os.PathLike, ref: str | os.PathLike | None, metrics: list[str],
                   options: ScoreOptions | None = None, save_stats: str | os.PathLike | None = None) -> dict:
    from gan_probe.metrics.sources import open_source

    opts = options or ScoreOptions()
    metrics = parse_metrics(",".join(metrics))
    if NEEDS_REF & set(metrics) and ref is None:
        missing = sorted(NEEDS_REF & set(metrics))
        raise GanProbeError(f"{', '.join(missing)} need{'s' if len(missing) == 1 else ''} a reference: pass --ref REF")
    if save_stats:
        check_writable(save_stats)  # before the feature passes, not after
    if opts.dims not in (64, 192, 768, 2048):
        raise GanProbeError(f"--dims must be one of 64, 192, 768, 2048 (got {opts.dims})")
    src_kw = dict(n=opts.n, seed=opts.seed, skip_bad=opts.skip_bad, data_root=opts.data_root,
                  download=opts.data_download)
    gen_src = open_source(gen, **src_kw)
    ref_src = open_source(ref, **src_kw) if ref is not None else None
    need_feats = bool({"kid", "pr", "dc"} & set(metrics))
    need_logits = "is" in metrics

    sides = [(gen_src, need_feats, need_logits)] + ([(ref_src, need_feats, False)] if ref_src else [])
    if all(s.kind == "npz" for s, _, _ in sides) and not (need_feats or need_logits):
        results = [_npz_side(s) for s, _, _ in sides]  # the torch-free path
        protocol = {"extractor": "statistics files (as written)", "dims": int(len(results[0].mu))}
    else:
        results, protocol = _extract_sides(sides, opts)
    gen_res = results[0]
    ref_res = results[1] if ref_src else None
    out: dict = {"metrics": metrics, "gen": _side_summary(gen_res), "ref": _side_summary(ref_res) if ref_res else None,
                 "protocol": protocol, "warnings": [note for r in results for note in r.notes]}
    if protocol.get("reference_weights") is False:
        out["warnings"].append(f"{protocol['weights']} is not pytorch-fid's weights file (its SHA-256 does not start "
                               "with 6726825d): these numbers are not comparable with pytorch-fid's or published ones")
    if save_stats:
        from gan_probe.metrics.statsfile import save_statistics

        out["saved_stats"] = str(save_statistics(save_stats, gen_res.mu, gen_res.sigma))
    out.update(results_to_scores(gen_res, ref_res, metrics, opts, out["warnings"]))
    return out


def results_to_scores(gen, ref, metrics: list[str], opts: ScoreOptions, notes: list[str]) -> dict:
    """The metric values from the two sides' statistics / features / logits."""
    scores: dict = {}
    if "fid" in metrics:
        from gan_probe.metrics.fid import SmallSampleWarning, statistics_to_fid, warn_if_few_samples

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            for r in (gen, ref):
                if r.n is not None and (text := warn_if_few_samples(r.n, len(r.mu))):
                    notes.append(f"{r.source.spec}: {text}")
        scores["fid"] = statistics_to_fid(gen.mu, gen.sigma, ref.mu, ref.sigma)
    if "is" in metrics:
        from gan_probe.metrics.inception_score import logits_to_inception_score

        scores["is"], scores["is_std"] = logits_to_inception_score(gen.logits)
    if "kid" in metrics:
        from gan_probe.metrics.kid import features_to_kid

        scores["kid"], scores["kid_std"] = features_to_kid(ref.features, gen.features, opts.kid_subsets,
                                                           opts.kid_subset_size, opts.seed)
        scores["kid_subset_size"] = min(opts.kid_subset_size, len(ref.features), len(gen.features))
    device = _metric_device(opts) if {"pr", "dc"} & set(metrics) else "cpu"
    if "pr" in metrics:
        from gan_probe.metrics.prdc import features_to_precision_recall

        scores["precision"], scores["recall"] = features_to_precision_recall(ref.features, gen.features,
                                                                             opts.pr_k, device)
    if "dc" in metrics:
        from gan_probe.metrics.prdc import features_to_density_coverage

        scores["density"], scores["coverage"] = features_to_density_coverage(ref.features, gen.features,
                                                                             opts.dc_k, device)
    return scores


def _metric_device(opts: ScoreOptions) -> str:
    from gan_probe.device import resolve_device

    return str(resolve_device(opts.device))


def _npz_side(source):
    from gan_probe.metrics.extract import SourceFeatures
    from gan_probe.metrics.statsfile import load_statistics

    mu, sigma = load_statistics(source.path)
    return SourceFeatures(source, mu, sigma, None)


def _extract_sides(sides, opts: ScoreOptions):
    from gan_probe.device import resolve_device
    from gan_probe.features.inception import (EXTRACTOR, INPUT_SIZE, InceptionExtractor, find_inception_weights,
                                              is_reference_weights)
    from gan_probe.metrics.extract import ExtractOptions, source_to_features

    device = resolve_device(opts.device)
    weights = find_inception_weights(opts.weights, download=opts.download, progress=opts.progress)
    eopts = ExtractOptions(weights=weights, dims=opts.dims, device=str(device), batch_size=opts.batch_size,
                           num_workers=opts.num_workers, cache=opts.cache, progress=opts.progress)
    loaded: list = []

    def get_extractor():
        if not loaded:
            loaded.append(InceptionExtractor(weights, device, opts.dims))
        return loaded[0]

    for s, f, lg in sides:  # a statistics file of the wrong size fails before any extraction
        if s.kind == "npz" and not (f or lg) and len(_npz_side(s).mu) != opts.dims:
            raise GanProbeError(f"{s.spec} holds {len(_npz_side(s).mu)}-d statistics but --dims is {opts.dims}")
    results = [source_to_features(s, eopts, get_extractor, need_features=f, need_logits=lg) for s, f, lg in sides]
    reference = is_reference_weights(weights)
    protocol = {"extractor": EXTRACTOR if reference else f"{EXTRACTOR} [NON-REFERENCE WEIGHTS]",
                "weights": str(weights), "reference_weights": reference, "dims": opts.dims,
                "resize": f"bilinear to {INPUT_SIZE}x{INPUT_SIZE}, align_corners=False, no antialias (pytorch-fid)",
                "input": "uint8 RGB (grayscale/RGBA/palette converted; generated samples rounded to uint8)",
                "device": str(device)}
    return results, protocol


def _side_summary(r) -> dict:
    s = r.source
    d = {"source": s.spec, "kind": s.kind, "n": r.n, "cached": r.from_cache}
    if s.kind == "checkpoint":
        d.update(checkpoint=str(s.path), seed=s.seed)
    if s.skipped:
        d["skipped"] = list(s.skipped)
    return d


def default_out_dir(gen: str | os.PathLike) -> Path | None:
    """``<RUN_DIR>/analysis/score`` when GEN is a RUN_DIR or one of its checkpoints, else None."""
    from gan_probe import runs

    run_dir = runs.find_run_dir(gen)
    return run_dir / runs.ANALYSIS_DIR / "score" if run_dir is not None else None
