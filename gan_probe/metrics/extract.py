"""Sources -> Inception features and statistics, through the content-keyed cache.

One feature pass per source gives everything asked for: the running mean/covariance
(float64, for FID), and, only when a metric needs them, the features themselves (KID,
precision/recall, density/coverage) and the bias-free logits (Inception Score).
Statistics of a source are cached on disk (:mod:`gan_probe.cache`) under a key made of
its content fingerprint, the extractor, the weights file, ``dims`` and the
preprocessing; a repeat run against the same real folder extracts only the other side.

Under ``torchrun`` (``dist``, a :class:`gan_probe.distributed.Dist` of several processes) each
process extracts its contiguous share of the source's images, in whole batches (so every image
goes through Inception in the batch it has in one process), the float64 moments are merged and
features / logits gathered in rank order: every process gets the one-process result. Rank 0
alone reads and writes the cache and tells the others whether it hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gan_probe.errors import GanProbeError
from gan_probe.metrics.sources import Source
from gan_probe.progress import progress_bar

CACHE_VERSION = 1
STATS_KIND = "inception-stats"
FEATURES_KIND = "inception-features"


@dataclass
class SourceFeatures:
    """What one source gave: statistics always; features / logits when asked."""

    source: Source
    mu: np.ndarray
    sigma: np.ndarray
    n: int | None
    features: np.ndarray | None = None  # N x dims float32
    logits: np.ndarray | None = None  # N x 1008 float32 (fc without bias)
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class ExtractOptions:
    weights: Path  # the resolved Inception weights file
    dims: int = 2048
    device: str = "cpu"
    batch_size: int = 50
    num_workers: int = 2
    cache: bool = True
    cache_root: Path | None = None
    progress: bool = True
    protocol: str = "pytorch-fid"  # the resize protocol (gan_probe.features.resize.PROTOCOLS)


def statistics_cache_key(source: Source, opts: ExtractOptions) -> str:
    from gan_probe.cache import cache_key
    from gan_probe.features.inception import EXTRACTOR, PREPROCESSING

    st = opts.weights.stat()
    parts = dict(version=CACHE_VERSION, source=source.fingerprint, extractor=EXTRACTOR,
                 weights=[opts.weights.name, st.st_size, st.st_mtime_ns], dims=opts.dims, preprocessing=PREPROCESSING)
    if opts.protocol != "pytorch-fid":  # the default's key stays as before, so existing caches still hit
        parts["protocol"] = opts.protocol
    return cache_key(**parts)


def source_to_features(source: Source, opts: ExtractOptions, get_extractor: Callable, *,
                       need_features: bool = False, need_logits: bool = False, dist=None) -> SourceFeatures:
    """Statistics (and features / logits if needed) of ``source``, from the cache when possible.

    ``get_extractor()`` returns the loaded :class:`InceptionExtractor`; it is only called on a
    cache miss, so a fully cached run never loads the network. ``dist``: this process's
    :class:`gan_probe.distributed.Dist` under torchrun (default: one process); every process
    returns the same result."""
    from gan_probe.distributed import Dist, broadcast

    d = dist or Dist()
    if source.kind == "npz":
        if need_features or need_logits:
            raise GanProbeError(f"{source.spec} holds only statistics (mu, sigma): features and logits need "
                                f"images; give a folder, checkpoint or dataset")
        from gan_probe.metrics.statsfile import load_statistics

        mu, sigma = load_statistics(source.path)
        return SourceFeatures(source, mu, sigma, None)

    from gan_probe.cache import load_arrays, save_arrays

    key = statistics_cache_key(source, opts) if opts.cache else None
    if key is not None:
        # rank 0 alone reads the cache; its answer (the entry) is every rank's: no rank can see a
        # hit that another missed (an entry written meanwhile by another job) and skip the pass
        hit = _cached(source, key, need_features, need_logits, opts.cache_root, load_arrays) if d.main else None
        hit = broadcast(hit, d)
        if hit is not None:
            hit.source = source
            hit.notes[:0] = source.notes
            return hit
    result = _extract(source, opts, get_extractor(), need_features, need_logits, d)
    result.notes[:0] = source.notes
    if key is not None and d.main:
        save_arrays(STATS_KIND, key, {"mu": result.mu, "sigma": result.sigma, "n": np.array(result.n)},
                    opts.cache_root)
        if result.features is not None:
            arrays = {"features": result.features}
            if result.logits is not None:
                arrays["logits"] = result.logits
            save_arrays(FEATURES_KIND, key, arrays, opts.cache_root)
    return result


def _cached(source: Source, key: str, need_features: bool, need_logits: bool, root, load_arrays):
    stats = load_arrays(STATS_KIND, key, root)
    if stats is None or not {"mu", "sigma", "n"} <= set(stats):
        return None
    out = SourceFeatures(source, stats["mu"], stats["sigma"], int(stats["n"]), from_cache=True)
    if need_features or need_logits:
        feats = load_arrays(FEATURES_KIND, key, root)
        if feats is None or "features" not in feats or (need_logits and "logits" not in feats):
            return None
        out.features = feats["features"]
        out.logits = feats.get("logits")
    return out


def _extract(source: Source, opts: ExtractOptions, extractor, need_features: bool,
             need_logits: bool, d) -> SourceFeatures:
    from gan_probe.distributed import gather_objects, gather_rows, on_every_rank, shard
    from gan_probe.metrics.fid import StatisticsAccumulator

    rows = shard(source.n, d, block=opts.batch_size)
    acc, feats, logits = on_every_rank(lambda: _extract_rows(source, rows, opts, extractor, need_features,
                                                             need_logits, d), d)
    if d.world > 1:  # merge the moments, gather rows and skipped images, in rank order
        shares = gather_objects((acc.moments(), list(source.skipped)), d)
        acc = StatisticsAccumulator.from_moments(moments for moments, _ in shares)
        source.skipped[:] = [item for _, skipped in shares for item in skipped]
        feats = gather_rows(feats, d) if need_features else None
        logits = gather_rows(logits, d) if need_logits else None
    feats = feats if need_features else None
    logits = logits if need_logits else None
    done = acc.n
    if done == 0:
        raise GanProbeError(f"no readable images in {source.spec}")
    notes = []
    if source.skipped:
        notes.append(f"skipped {len(source.skipped)} unreadable image(s) in {source.spec}: "
                     + "; ".join(source.skipped[:3]) + (" ..." if len(source.skipped) > 3 else ""))
    mu, sigma = acc.statistics()
    return SourceFeatures(source, mu, sigma, done, feats, logits, notes=notes)


def _extract_rows(source: Source, rows: range, opts: ExtractOptions, extractor, need_features: bool,
                  need_logits: bool, d):
    """This process's share: (its statistics accumulator, its features, its logits) of images ``rows``."""
    from gan_probe.features.resize import get_protocol
    from gan_probe.metrics.fid import StatisticsAccumulator

    protocol = get_protocol(opts.protocol)
    on_device = opts.device != "cpu" and protocol.name != "clean"  # clean resizes with PIL, on the CPU

    acc = StatisticsAccumulator()
    feats, logits = [], []
    show = opts.progress and d.main  # a bar on a terminal, else a line every few seconds (gan_probe.progress)
    label = f"Inception: {source.spec}" + (f" (rank 0 of {d.world})" if d.world > 1 else "")
    with progress_bar(len(rows), label, show) as advance:
        for batch in source.batches(opts.batch_size, opts.num_workers, opts.device, rows=rows):
            if on_device:  # resize where the network runs (uint8 travels: 4x less to copy)
                batch = [im.to(opts.device) for im in batch] if isinstance(batch, list) else batch.to(opts.device)
            x = protocol.to_input(batch)
            out = extractor(x, logits=need_logits)
            f = out.features.numpy()
            acc.update(f)
            if need_features:
                feats.append(f.astype(np.float32, copy=False))
            if need_logits:
                logits.append(out.logits.numpy().astype(np.float32))
            advance(len(f))
            del x, out
    dims = opts.dims
    return (acc, np.concatenate(feats) if feats else np.zeros((0, dims), np.float32),
            np.concatenate(logits) if logits else np.zeros((0, 1008), np.float32))

