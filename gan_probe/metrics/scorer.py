"""``Scorer``: the scores of ``gan-probe score`` from inside a training loop, without writing images.

::

    from gan_probe import Scorer

    scorer = Scorer(ref="digits:train", metrics=["fid"], device="cuda")   # any SOURCE, or a .npz of statistics
    for z in fixed_latents:                    # e.g. every 1000 steps
        scorer.update(G(z))                    # float in [-1, 1] (G's tanh), or uint8 0..255; N x C x H x W
    print(scorer.compute()["fid"])             # the dict `gan-probe score --json` prints
    scorer.reset()                             # the reference side is kept for the next round

``update(images)`` quantises float images to uint8 exactly as ``gan-probe sample`` writes its PNGs
(so a float batch, its uint8 copy, the PNG folder and the checkpoint all score the same), runs the
feature network batch by batch and keeps only what the chosen metrics read: the float64 running
mean and covariance (FID, FD), the features (KID, precision/recall, ...), the logits (IS).
``compute()`` hands both sides to the metric registry (:mod:`gan_probe.metrics.registry`) through
:func:`gan_probe.metrics.score.scores_from_sides`, the same code ``score`` runs, so it returns the
same dict as ``gan-probe score GEN --ref REF --json`` for the same images (``gen`` names this
Scorer instead of a source). The reference side is computed once, on the first ``compute()``,
through the same content-keyed cache as ``score``.

Under ``torchrun`` (a ``torch.distributed`` process group initialised), each process updates with
its own share of the images and ``compute()`` gathers the moments, features and logits of every
rank (:mod:`gan_probe.distributed`), in rank order: every rank gets the one-process result (rows
in rank order). Every rank must call ``compute()`` (it is a collective).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Iterable

import numpy as np
import torch

from gan_probe.errors import GanProbeError
from gan_probe.metrics.score import ScoreOptions


class Scorer:
    """Scores of generated images against a reference, fed batch by batch (see the module doc).

    ``ref``: any source ``gan-probe score --ref`` takes (image folder, ``.npz`` statistics or image
    array, ``.npy``, ``.zip`` / ``.tar``, checkpoint, dataset name); None when the metrics need none.
    ``metrics``: names or a comma list (default: ``score``'s defaults for the space). ``features``:
    ``inception`` or an encoder (``dinov2``, ``clip``). ``device``: where the feature network runs.
    ``options``: every other ``score`` setting (:class:`~gan_probe.metrics.score.ScoreOptions`:
    weights, dims, resize protocol, KID subsets, seed, ...); ``features`` and ``device`` override it.
    ``value_range``: the range float images come in ((-1, 1): G's tanh output; (0, 1) for others).
    ``name``: how the result names the generated side. ``distributed``: gather across the
    process group (None: when one is initialised with more than one process).
    """

    def __init__(self, ref: str | os.PathLike | None = None, metrics: str | Iterable[str] | None = None,
                 features: str | None = None, *, device: str | torch.device | None = None,
                 options: ScoreOptions | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
                 name: str = "Scorer", distributed: bool | None = None):
        from gan_probe.metrics.score import check_options

        opts = replace(options) if options is not None else ScoreOptions(progress=False)
        if features is not None:
            opts.features = features
        if device is not None:
            opts.device = str(device)
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise GanProbeError(f"value_range must be (low, high) with high > low (got {value_range})",
                                param="value_range")
        self.options = opts
        self.value_range = (lo, hi)
        self.name = name
        self.distributed = distributed
        self.metrics = check_options(ref is not None, metrics, opts)
        self._ref_source = self._open_ref(ref)
        self._ref_result = None
        self._setup_space()
        self.reset()

    # ------------------------------------------------------------------ setup
    def _open_ref(self, ref):
        if ref is None:
            return None
        from gan_probe.metrics.score import _needs, check_sides
        from gan_probe.metrics.sources import open_source

        o = self.options
        src = open_source(ref, n=o.n, seed=o.seed, skip_bad=o.skip_bad, data_root=o.data_root,
                          download=o.data_download)
        check_sides([(self._gen_source(0), self._gen_needs()), (src, _needs(self.metrics, "ref", src, o))],
                    self.metrics, o)
        return src

    def _gen_source(self, n: int):
        from gan_probe.metrics.sources import Source

        return Source(spec=self.name, kind="tensors", n=n)

    def _gen_needs(self) -> frozenset[str]:
        from gan_probe.metrics.score import _needs

        return _needs(self.metrics, "gen", self._gen_source(0), self.options)

    def _setup_space(self) -> None:
        """Find the weights now (a missing file fails here, before any training); load lazily."""
        from gan_probe.device import distributed_device, resolve_device

        o = self.options
        d = self._dist()  # under torchrun, a CUDA name means this process's GPU (cuda:LOCAL_RANK)
        self.device = distributed_device(o.device, d.local_rank) if d.world > 1 else resolve_device(o.device)
        needs = self._gen_needs()
        self._keep_features = "features" in needs or o.features != "inception"
        self._keep_logits = "logits" in needs
        self._net = None
        if o.features == "inception":
            from gan_probe.features.inception import find_inception_weights
            from gan_probe.features.resize import get_protocol

            self._weights = find_inception_weights(o.weights, download=o.download, progress=o.progress)
            self._resize = get_protocol(o.protocol)
        else:
            self._weights = None

    def _network(self):
        """The Inception extractor or the encoder, loaded on first use."""
        if self._net is None:
            o = self.options
            if o.features == "inception":
                from gan_probe.features.inception import InceptionExtractor

                self._net = InceptionExtractor(self._weights, self.device, o.dims)
            else:
                from gan_probe.encoders import get_encoder

                self._net = get_encoder(o.features, weights=o.encoder_weights, device=self.device)
        return self._net

    # ------------------------------------------------------------------ the generated side
    def reset(self) -> None:
        """Forget the generated images seen so far (the reference side and the network stay)."""
        from gan_probe.metrics.fid import StatisticsAccumulator

        self._acc = StatisticsAccumulator()
        self._features: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []
        self.n = 0

    def to_uint8(self, images) -> torch.Tensor:
        """``images`` (N x C x H x W, C = 1 or 3; uint8 0..255, or float in ``value_range``) as uint8
        N x 3 x H x W on their device, floats rounded as ``gan-probe sample`` writes PNGs."""
        from gan_probe.sampling import quantize

        x = torch.from_numpy(images) if isinstance(images, np.ndarray) else images
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
            shape = tuple(x.shape) if hasattr(x, "shape") else type(images).__name__
            raise GanProbeError(f"images must be an N x C x H x W tensor with C = 1 or 3 (got {shape})",
                                param="images")
        if x.dtype != torch.uint8:
            if not x.is_floating_point():
                raise GanProbeError(f"images must be uint8 (0..255) or float (got {x.dtype})", param="images")
            x = x.detach().float()
            lo, hi = self.value_range
            if (lo, hi) != (-1.0, 1.0):
                x = (x - lo) * (2.0 / (hi - lo)) - 1
            x = quantize(x)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    @torch.inference_mode()
    def update(self, images) -> None:
        """Add a batch of generated images: uint8 N x C x H x W in 0..255, or float in
        ``value_range`` ([-1, 1] by default, as G outputs), C = 1 (repeated to RGB) or 3; on any
        device. Only what the metrics read is kept."""
        x = self.to_uint8(images)
        if len(x) == 0:
            return
        net = self._network()
        if self.options.features == "inception":
            on_device = self.device.type != "cpu" and self._resize.name != "clean"  # clean resizes with PIL
            x = x.to(self.device) if on_device else x.cpu()
            out = net(self._resize.to_input(x.contiguous()), logits=self._keep_logits)
            f = out.features.numpy()
            # the float64 moments where the network runs: on a GPU, products there beat a CPU round
            self._acc.update(out.features.to(self.device) if self.device.type == "cuda" else f)
            if self._keep_features:
                self._features.append(f.astype(np.float32, copy=False))
            if self._keep_logits:
                self._logits.append(out.logits.numpy().astype(np.float32))
        else:
            self._features.append(net(x.cpu().contiguous()).numpy().astype(np.float32, copy=False))
        self.n += len(x)

    # ------------------------------------------------------------------ scores
    def compute(self) -> dict:
        """The dict ``gan-probe score --json`` prints for the images seen since the last :meth:`reset`
        (all ranks' images under ``torchrun``: every rank must call it)."""
        from gan_probe.metrics.extract import SourceFeatures
        from gan_probe.metrics.fid import features_to_statistics
        from gan_probe.metrics.score import encoder_protocol, inception_protocol, scores_from_sides

        d = self._dist()
        n = int(self._gather(np.array([self.n], np.int64), d).sum())
        if n == 0:
            raise GanProbeError("images: none given; call update() with generated images before compute()",
                                param="images")
        feats = self._gathered_rows(self._features, d) if self._keep_features else None
        logits = self._gathered_rows(self._logits, d) if self._keep_logits else None
        if self.options.features == "inception":
            mu, sigma = self._gathered_statistics(d)
            protocol = inception_protocol(self._weights, self.options, self.device)
        else:
            mu, sigma = features_to_statistics(feats)
            protocol = encoder_protocol(self._network(), self.device)
        gen = SourceFeatures(self._gen_source(n), mu, sigma, n, feats, logits)
        ref = self._reference()
        if self.options.features != "inception":
            gen.notes[:0] = list(self._network().notes)  # the encoder's provenance warnings, as score tells them
        return scores_from_sides(gen, ref, self.metrics, self.options, protocol)

    def prepare(self) -> "Scorer":
        """Load the network and compute the reference side now (else: on first use), so that a reference
        that cannot be read fails here, e.g. before a training run writes anything. Returns the Scorer."""
        self._network()
        self._reference()
        return self

    def _reference(self):
        """The reference side, computed once (through the statistics / encoder cache, as ``score``)."""
        if self._ref_source is None or self._ref_result is not None:
            return self._ref_result
        from gan_probe.metrics.score import _needs

        src, o = self._ref_source, self.options
        needs = _needs(self.metrics, "ref", src, o)
        if o.features == "inception":
            from gan_probe.metrics.extract import ExtractOptions, source_to_features

            eopts = ExtractOptions(weights=self._weights, dims=o.dims, device=str(self.device),
                                   batch_size=o.batch_size, num_workers=o.num_workers, cache=o.cache,
                                   progress=o.progress, protocol=o.protocol)
            self._ref_result = source_to_features(src, eopts, self._network, need_features="features" in needs,
                                                  need_logits="logits" in needs)
        else:
            from gan_probe.encoders.extract import encode_source
            from gan_probe.metrics.extract import SourceFeatures
            from gan_probe.metrics.fid import features_to_statistics

            e = encode_source(src, self._network(), batch_size=o.batch_size, num_workers=o.num_workers,
                              cache=o.cache, progress=o.progress)
            mu, sigma = features_to_statistics(e.features)
            self._ref_result = SourceFeatures(src, mu, sigma, e.n, e.features, None, e.from_cache, list(e.notes))
        return self._ref_result

    # ------------------------------------------------------------------ several processes
    def _dist(self):
        from gan_probe import distributed

        if self.distributed is False:
            return distributed.Dist()
        return distributed.current()

    @staticmethod
    def _gather(rows: np.ndarray, d) -> np.ndarray:
        from gan_probe.distributed import gather_rows

        return gather_rows(rows, d)

    def _gathered_rows(self, parts: list[np.ndarray], d) -> np.ndarray:
        dim = parts[0].shape[1] if parts else None
        if d.world > 1:  # a rank with no rows still sends an empty block of the right width
            dim = int(self._gather(np.array([[-1 if dim is None else dim]], np.int64), d).max())
        local = np.concatenate(parts) if parts else np.zeros((0, dim or 0), np.float32)
        return self._gather(local, d)

    def _gathered_statistics(self, d) -> tuple[np.ndarray, np.ndarray]:
        """Every rank's running moments merged in rank order (Chan et al.'s pairwise update)."""
        from gan_probe.distributed import gather_objects
        from gan_probe.metrics.fid import StatisticsAccumulator

        if d.world == 1:
            return self._acc.statistics()
        return StatisticsAccumulator.from_moments(gather_objects(self._acc.moments(), d)).statistics()
