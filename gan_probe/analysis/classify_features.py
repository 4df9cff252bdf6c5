"""Features for classification: extracted in batches, cached on disk, streamed.

A dataset's features are written row block by row block into a ``.npy`` file
(float16 by default: half the bytes, and the accuracy is unchanged, see
docs/classify.md) through a temporary file renamed into the cache on success,
and read back as a read-only memory map. CIFAR-10's 50,000 x 28,672 training
features are 2.9 GB on disk and never need to be in RAM at once.

The cache key holds everything the features depend on: the dataset, split and
a fingerprint of its files, the checkpoint's SHA-256, the feature space, the
input size and channels, and the BatchNorm mode (``eval``: the checkpoint's
running statistics; ``recompute``: statistics re-estimated over the training
pool as the authors did, the average of per-minibatch (128) statistics).

Under ``torchrun`` (``dist``) each process extracts its contiguous share of the rows, in whole
batches; the rows are gathered in rank order on rank 0, which alone reads and writes the cache
(and tells the others whether it hit).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from gan_probe.cache import cache_dir, cache_key, files_fingerprint
from gan_probe.device import exact_float32
from gan_probe.errors import GanProbeError
from gan_probe.features import FeatureSpace, adapt_images, get_feature_space
from gan_probe.io import atomic_path
from gan_probe.progress import progress_bar

BN_MODES = ("eval", "recompute")
BN_CHOICES = ("auto",) + BN_MODES  # auto: recompute for random-disc, eval otherwise (bn_mode_for)
STORE_DTYPES = ("float16", "float32")
FLOAT16_MAX = 65504.0
CACHE_KIND = "classify-features"
FORMAT_VERSION = 1


@dataclass
class FeatureSet:
    """Rows of features (possibly a read-only memory map) and their integer labels."""

    features: np.ndarray
    labels: np.ndarray
    key: str = ""
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.labels)


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """The labels of a gan-probe dataset without decoding its images where possible."""
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[np.asarray(dataset.indices)]
    for attr in ("labels", "targets"):  # TensorImageDataset / ImageFolderDataset / SVHN, CIFAR10
        v = getattr(dataset, attr, None)
        if v is not None:
            y = np.asarray(v.numpy() if isinstance(v, torch.Tensor) else v, dtype=np.int64).reshape(-1)
            if dataset.__class__.__name__ == "SVHN":
                y = np.where(y == 10, 0, y)  # torchvision already maps 10 -> 0; stay safe
            return y
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def _batches(dataset: Dataset, batch_size: int, num_workers: int = 0, rows: range | None = None):
    """Batches of images ``rows`` (default all) of ``dataset``."""
    rows = range(len(dataset)) if rows is None else rows
    images = getattr(dataset, "images", None)
    if isinstance(images, torch.Tensor):  # in-memory: slice, no per-item overhead
        for start in range(rows.start, rows.stop, batch_size):
            yield images[start:min(start + batch_size, rows.stop)]
        return
    if not rows:
        return
    if rows != range(len(dataset)):
        dataset = Subset(dataset, list(rows))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for x, _ in loader:
        yield x


@torch.no_grad()
@exact_float32()
def recompute_bn_statistics(module: torch.nn.Module, space: FeatureSpace, dataset: Dataset, *,
                            batch_size: int = 128, device: str | torch.device = "cpu",
                            progress: bool = False) -> int:
    """Set every BatchNorm layer's running mean/var to the average of its per-minibatch
    statistics over ``dataset`` (the authors' Theano model kept no running averages; their
    analysis script re-estimated them this way). Returns the number of minibatches."""
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    sums: dict[int, list[torch.Tensor]] = {i: [0, 0] for i in range(len(bns))}

    def hook(i):
        def record(_m, inputs):
            x = inputs[0].float()
            dims = [0] + list(range(2, x.dim()))
            mean = x.mean(dims)
            var = ((x - mean.view(1, -1, *([1] * (x.dim() - 2)))) ** 2).mean(dims)  # biased, as Theano's
            sums[i][0] = sums[i][0] + mean
            sums[i][1] = sums[i][1] + var
        return record

    handles = [bn.register_forward_pre_hook(hook(i)) for i, bn in enumerate(bns)]
    was_training = module.training
    module.train()  # each layer normalises with its minibatch statistics, as during training
    n_batches = 0
    try:
        with progress_bar(len(dataset), "BatchNorm statistics", progress) as advance:
            for x in _batches(dataset, batch_size):
                module.features(adapt_images(x, space.image_size, space.channels).to(device))
                n_batches += 1
                advance(len(x))
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    for i, bn in enumerate(bns):
        bn.running_mean.copy_(sums[i][0] / n_batches)
        bn.running_var.copy_(sums[i][1] / n_batches)
    module.eval()
    return n_batches


def extract_into(space: FeatureSpace, dataset: Dataset, out: np.ndarray, *, batch_size: int = 256,
                 num_workers: int = 0, progress: bool = False, description: str = "features",
                 rows: range | None = None) -> float:
    """Write ``space``'s features of every image of ``dataset`` (or of images ``rows``) into ``out``
    (N x dim, e.g. a memory map), batch by batch. Returns the largest absolute value seen."""
    start, peak = 0, 0.0
    rows = range(len(dataset)) if rows is None else rows
    with progress_bar(len(rows), description, progress) as advance:
        for x in _batches(dataset, batch_size, num_workers, rows):
            f = space(x)
            peak = max(peak, float(f.abs().max())) if len(f) else peak
            out[start:start + len(f)] = f.numpy().astype(out.dtype, copy=False)
            start += len(f)
            advance(len(f))
    if start != len(out):
        raise GanProbeError(f"the dataset gave {start} images, expected {len(out)}")
    return peak


def _extract_shared(space: FeatureSpace, dataset: Dataset, labels: np.ndarray, *, key: str, batch_size: int,
                    num_workers: int, store_dtype: str, use_cache: bool, cache_root: Path | None, progress: bool,
                    description: str, d) -> FeatureSet | None:
    """:func:`extract_features` under torchrun: each rank its share, gathered on rank 0, which
    alone reads and writes the cache and returns the set (other ranks: None). The rows and their
    storage are those of one process, value for value."""
    from gan_probe.distributed import broadcast, gather_rows, on_every_rank, shard

    n = len(dataset)
    hit = lookup_features(key, n, space.dim, store_dtype, cache_root) if use_cache and d.main else None
    if broadcast(hit is not None, d):
        return hit
    rows = shard(n, d, block=batch_size)
    part = np.empty((len(rows), space.dim), dtype=np.float32)
    on_every_rank(lambda: extract_into(space, dataset, part, batch_size=batch_size, num_workers=num_workers,
                                       progress=progress and d.main, description=description, rows=rows), d)
    feats = gather_rows(part, d)
    if not d.main:
        return None
    if not use_cache:
        return FeatureSet(feats, labels, key, False)
    peak = float(np.abs(feats).max()) if len(feats) else 0.0
    dtype = "float32" if store_dtype == "float16" and peak >= FLOAT16_MAX else store_dtype
    path = features_path(f"{key}-{dtype}", cache_root)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, feats.astype(dtype, copy=False))
    with atomic_path(_labels_path(path)) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, labels)
    return FeatureSet(np.load(path, mmap_mode="r"), labels, path.stem, False)


def features_path(key: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / CACHE_KIND / f"{key}.npy"


def _labels_path(path: Path) -> Path:
    return path.with_name(path.stem + ".labels.npy")


def _load_entry(path: Path, n: int, dim: int) -> FeatureSet | None:
    try:
        feats = np.load(path, mmap_mode="r")
        labels = np.load(_labels_path(path))
    except (OSError, ValueError, EOFError):
        for p in (path, _labels_path(path)):
            p.unlink(missing_ok=True)
        return None
    if feats.shape != (n, dim) or labels.shape != (n,):
        return None
    return FeatureSet(feats, labels, path.stem, True)


def lookup_features(key: str, n: int, dim: int, store_dtype: str = "float16",
                    cache_root: Path | None = None) -> FeatureSet | None:
    """The cached features of ``key`` (n x dim), or None."""
    for dt in dict.fromkeys((store_dtype, "float32")):  # float32: where float16 would have overflowed
        path = features_path(f"{key}-{dt}", cache_root)
        hit = _load_entry(path, n, dim) if path.is_file() else None
        if hit is not None:
            return hit
    return None


def extract_features(space: FeatureSpace, dataset: Dataset, *, key: str, batch_size: int = 256,
                     num_workers: int = 0, store_dtype: str = "float16", use_cache: bool = True,
                     cache_root: Path | None = None, progress: bool = False,
                     description: str = "features", dist=None) -> FeatureSet | None:
    """Features of ``dataset`` from the cache, or extracted, stored and memory-mapped.

    With ``use_cache=False`` the features are kept in memory (float32) and nothing is written.
    ``dist`` (torchrun's :class:`gan_probe.distributed.Dist`): the work is shared; rank 0 gets the
    set, the other ranks None."""
    if store_dtype not in STORE_DTYPES:
        raise GanProbeError(f"unknown feature storage dtype {store_dtype!r}; choose {' or '.join(STORE_DTYPES)}")
    n = len(dataset)
    labels = dataset_labels(dataset)
    if dist is not None and dist.world > 1:
        return _extract_shared(space, dataset, labels, key=key, batch_size=batch_size, num_workers=num_workers,
                               store_dtype=store_dtype, use_cache=use_cache, cache_root=cache_root,
                               progress=progress, description=description, d=dist)
    if not use_cache:
        feats = np.empty((n, space.dim), dtype=np.float32)
        extract_into(space, dataset, feats, batch_size=batch_size, num_workers=num_workers,
                     progress=progress, description=description)
        return FeatureSet(feats, labels, key, False)
    hit = lookup_features(key, n, space.dim, store_dtype, cache_root)
    if hit is not None:
        return hit
    path = features_path(f"{key}-{store_dtype}", cache_root)
    peak = _write_entry(path, space, dataset, store_dtype, batch_size, num_workers, progress, description)
    if store_dtype == "float16" and peak >= FLOAT16_MAX:  # float16 would overflow: keep float32 instead
        path.unlink(missing_ok=True)
        path = features_path(f"{key}-float32", cache_root)
        _write_entry(path, space, dataset, "float32", batch_size, num_workers, progress, description)
    with atomic_path(_labels_path(path)) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, labels)
    return FeatureSet(np.load(path, mmap_mode="r"), labels, path.stem, False)


def _write_entry(path, space, dataset, dtype, batch_size, num_workers, progress, description) -> float:
    with atomic_path(path) as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(len(dataset), space.dim))
        peak = extract_into(space, dataset, mm, batch_size=batch_size, num_workers=num_workers,
                            progress=progress, description=description)
        mm.flush()
        del mm
    return peak


def data_fingerprint(spec, root: Path | None) -> object:
    """What identifies a dataset's content for the cache key."""
    from gan_probe.data import default_data_root, list_images

    if spec.path is not None:
        return files_fingerprint(list_images(spec.path))
    root = Path(root).expanduser() if root else default_data_root()
    files: list[Path] = []
    if spec.name == "digits":
        import sklearn

        return ["sklearn-digits", sklearn.__version__]
    if spec.name == "cifar10":
        files = sorted((root / "cifar-10-batches-py").glob("*_batch*"))
    elif spec.name == "svhn":
        files = [root / f"{spec.split}_32x32.mat"]
    files = [f for f in files if f.is_file()]
    return [str(root.resolve()), files_fingerprint(files)]


def checkpoint_fingerprint(checkpoint: str | os.PathLike) -> str:
    from gan_probe.models.sources import model_fingerprint

    return model_fingerprint(checkpoint)  # a checkpoint file's sha256, or a model card's content


def features_key(*, dataset: str, split: str, data: object, checkpoint_sha256: str, features: str,
                 bn_stats: str, bn_pool: str, image_size: int | None, channels: int | None,
                 seed: int) -> str:
    """The cache key of one dataset split's features (the scoring cache's style: a SHA-256 of
    canonical JSON of everything the features depend on)."""
    return cache_key(kind=CACHE_KIND, version=FORMAT_VERSION, dataset=dataset, split=split, data=data,
                     checkpoint=checkpoint_sha256, features=features, bn_stats=bn_stats, bn_pool=bn_pool,
                     image_size=image_size, channels=channels, seed=seed)


def indices_digest(indices: np.ndarray | None) -> str:
    if indices is None:
        return "all"
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def bn_mode_for(features: str, bn_stats: str) -> str:
    """The BatchNorm mode ``bn_stats`` means for a feature space: ``auto`` is ``recompute`` for
    ``random-disc`` and ``eval`` for everything else.

    A random D's running statistics are BatchNorm's initial ones (mean 0, variance 1), not those of
    its activations on images: every BN layer then rescales by the wrong amount, the pooled features
    come out on another scale and the SVM's best C leaves the grid (on digits: C=10, the top, and
    91.89%). Recomputed over the training pool (the authors' procedure for their trained D), each
    layer normalises as in training and the control is tuned fairly (93.31%, C=0.01; docs/classify.md).
    A trained D's running statistics are real, so it keeps them unless asked."""
    if bn_stats not in BN_CHOICES:
        raise GanProbeError(f"unknown --bn-stats {bn_stats!r}; choose one of {', '.join(BN_CHOICES)}")
    if bn_stats == "auto":
        return "recompute" if features == "random-disc" else "eval"
    return bn_stats


def make_feature_space(name: str, checkpoint, device: torch.device, seed: int = 0) -> FeatureSpace:
    """The named feature space; ``seed`` initialises ``random-disc``."""
    kwargs = {"seed": seed} if name == "random-disc" else {}
    return get_feature_space(name, checkpoint=checkpoint, device=device, **kwargs)
