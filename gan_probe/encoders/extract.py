"""Sources -> encoder features, through gan-probe's content-keyed cache.

The same cache as Inception's statistics (:mod:`gan_probe.cache`): the key is the source's
content fingerprint plus the encoder's :meth:`~gan_probe.encoders.base.Encoder.cache_identity`
(space, weights SHA-256, preprocessing, precision), so a repeat run on the same folder with the
same weights loads the features instead of running a ViT-L again, and any change to the images,
the weights or the preprocessing misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gan_probe.encoders.base import Encoder
from gan_probe.errors import GanProbeError
from gan_probe.progress import progress_bar

CACHE_VERSION = 1
FEATURES_KIND = "encoder-features"


@dataclass
class EncodedSource:
    source: object  # gan_probe.metrics.sources.Source
    features: np.ndarray  # N x dim float32
    provenance: dict
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.features)


def features_cache_key(source, encoder: Encoder) -> str:
    from gan_probe.cache import cache_key

    return cache_key(version=CACHE_VERSION, source=source.fingerprint, encoder=encoder.cache_identity())


def encode_source(source, encoder: Encoder, *, batch_size: int = 32, num_workers: int = 2, cache: bool = True,
                  cache_root: Path | None = None, progress: bool = True, dist=None) -> EncodedSource:
    """``encoder``'s features of every image of ``source`` (a :class:`gan_probe.metrics.sources.Source`),
    from the cache when possible; ``encoder`` runs only on a miss.

    ``dist`` (a :class:`gan_probe.distributed.Dist` under torchrun): each process encodes its share
    of the images in whole batches and the features are gathered in rank order, so every process
    returns the one-process result; rank 0 alone reads and writes the cache."""
    from gan_probe.cache import load_arrays, save_arrays
    from gan_probe.distributed import Dist, broadcast, gather_objects, gather_rows, on_every_rank, shard

    d = dist or Dist()

    if source.kind == "npz":
        raise GanProbeError(f"{source.spec} holds only statistics: {encoder.name} features need images; "
                            f"give a folder, checkpoint or dataset")
    key = features_cache_key(source, encoder) if cache else None
    if key is not None:
        hit = load_arrays(FEATURES_KIND, key, cache_root) if d.main else None
        ok = (hit is not None and "features" in hit and hit["features"].ndim == 2
              and hit["features"].shape[1] == encoder.dim)
        hit = broadcast(hit["features"] if ok else None, d)  # rank 0's answer is every rank's
        if hit is not None:
            return EncodedSource(source, hit, encoder.provenance(), from_cache=True)
    rows = shard(source.n, d, block=batch_size)

    def encode_rows() -> np.ndarray:
        feats = []
        show = progress and d.main  # a bar on a terminal, else a line every few seconds (gan_probe.progress)
        with progress_bar(len(rows), f"{encoder.name}: {source.spec}", show) as advance:
            for batch in source.batches(batch_size, num_workers, str(encoder.device), rows=rows):
                f = encoder(batch).numpy().astype(np.float32, copy=False)
                feats.append(f)
                advance(len(f))
        return np.concatenate(feats) if feats else np.zeros((0, encoder.dim), np.float32)

    features = on_every_rank(encode_rows, d)
    if d.world > 1:
        features = gather_rows(features, d)
        skipped = [s for part in gather_objects(list(getattr(source, "skipped", []) or []), d) for s in part]
        if hasattr(source, "skipped"):
            source.skipped[:] = skipped
    done = len(features)
    if done == 0:
        raise GanProbeError(f"no readable images in {source.spec}")
    notes = []
    if getattr(source, "skipped", None):
        notes.append(f"skipped {len(source.skipped)} unreadable image(s) in {source.spec}: "
                     + "; ".join(source.skipped[:3]) + (" ..." if len(source.skipped) > 3 else ""))
    if key is not None and d.main:
        save_arrays(FEATURES_KIND, key, {"features": features}, cache_root)
    return EncodedSource(source, features, encoder.provenance(), notes=notes)
