"""The paper's representation experiment (Tables 1 and 2): features + linear L2-SVM.

A protocol fixes three disjoint sets of images: the *pool* labels are drawn
from, a *validation* set that picks C, and a *test* set that is only ever
scored. Labels are never drawn from the validation or test sets; every draw
comes from ``numpy.random.default_rng([seed, stage, draw])``, so a run is
reproducible and the C search uses the same draws for every C.

- ``digits``: pool + validation = ``digits:train`` (validation: a fixed, seeded,
  stratified 20%), test = ``digits:test`` (the fixed seeded stratified 25%).
- ``cifar10``: ``cifar10:train`` shuffled with ``RandomState(42)``, its first
  5,000 images for validation; test = ``cifar10:test``. ``--labels-per-class 0``
  (all labels, Table 1's first column) picks C on the validation set, then
  refits on all 50,000; 400 labels per class is its second column.
- ``svhn``: the authors' script: ``train_32x32`` shuffled as by
  ``sklearn.utils.shuffle(random_state=RandomState(42))``, the first 10,000
  images for validation, 100 labels per class from the remaining 63,257; C is
  the grid value with the lowest mean validation error over 10 draws; then the
  test error over 100 draws, reported as mean +- 1.96 std (Table 2).
- an image folder with class sub-folders: test = a seeded stratified 25%,
  validation = a seeded stratified 20% of the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from gan_probe.analysis import classify_features as cf
from gan_probe.errors import GanProbeError
from gan_probe.svm import (DEFAULT_CHUNK_BYTES, LinearModel, fit_linear_svm, resolve_solver,
                           standardization)

AUTHORS_C_GRID = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)  # their svhn_semisup_analysis.py
WIDE_C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
STAGE_VALIDATION, STAGE_TEST = 0, 1

PAPER = {  # (protocol, labels per class) -> the paper's DCGAN + L2-SVM number
    ("cifar10", 0): {"source": "Table 1, CIFAR-10, all labels (D trained on Imagenet-1k)", "accuracy": 0.828},
    ("cifar10", 400): {"source": "Table 1, CIFAR-10, 400 labels per class", "accuracy": 0.738, "std": 0.004},
    ("svhn", 100): {"source": "Table 2, SVHN, 1000 labels", "error": 0.2248},
}


@dataclass(frozen=True)
class Protocol:
    name: str
    train: str | None  # dataset spec of the pool + validation images (None: the folder)
    test: str | None
    labels_per_class: int = 10
    repeats: int = 10
    val_draws: int = 10
    c_grid: tuple[float, ...] = WIDE_C_GRID
    spread: float = 1.0  # reported +- spread x std (the authors' SVHN script: 1.96)
    report: str = "accuracy"  # the paper's quantity: accuracy or error


PROTOCOLS = {
    "digits": Protocol("digits", "digits:train", "digits:test"),
    "cifar10": Protocol("cifar10", "cifar10:train", "cifar10:test", labels_per_class=0, repeats=10),
    "svhn": Protocol("svhn", "svhn:train", "svhn:test", labels_per_class=100, repeats=100, val_draws=10,
                     c_grid=AUTHORS_C_GRID, spread=1.96, report="error"),
    "folder": Protocol("folder", None, None),
}
SHUFFLED_VALIDATION = {"cifar10": 5000, "svhn": 10000}  # first N of the RandomState(42) shuffle
FRACTION_SEED, VAL_FRACTION, FOLDER_TEST_FRACTION = 0, 0.2, 0.25


@dataclass
class Split:
    """Indices into ``train`` (pool, validation) and into ``test`` (scored rows)."""

    train: cf.FeatureSet
    pool: np.ndarray
    validation: np.ndarray
    test: cf.FeatureSet
    test_rows: np.ndarray

    def check_disjoint(self) -> None:
        if np.intersect1d(self.pool, self.validation).size:
            raise AssertionError("pool and validation overlap")
        if self.test is self.train and (np.intersect1d(self.test_rows, self.pool).size
                                        or np.intersect1d(self.test_rows, self.validation).size):
            raise AssertionError("test rows overlap the pool or validation")


def shuffled_validation(n: int, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    """The authors' split: shuffle with RandomState(42) (as sklearn.utils.shuffle does), first
    ``n_val`` for validation, the rest the pool. Returns (pool, validation) sorted."""
    from sklearn.utils import shuffle

    if n <= n_val:
        raise GanProbeError(f"the training set has {n} images; the protocol holds out {n_val} for validation")
    order = shuffle(np.arange(n), random_state=np.random.RandomState(42))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def stratified_split(indices: np.ndarray, labels: np.ndarray, fraction: float,
                     seed: int = FRACTION_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held out): a seeded stratified ``fraction`` of ``indices``."""
    from sklearn.model_selection import train_test_split

    try:
        rest, held = train_test_split(indices, test_size=fraction, random_state=seed, stratify=labels[indices])
    except ValueError as e:
        raise GanProbeError(f"cannot split {len(indices)} images by class ({e})") from e
    return np.sort(rest), np.sort(held)


def draw_labels(labels: np.ndarray, pool: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` indices of each class, drawn without replacement from ``pool`` only (sorted)."""
    out = []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        if len(members) < per_class:
            raise GanProbeError(f"class {c} has {len(members)} images in the pool, fewer than "
                                f"--labels-per-class {per_class}")
        out.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(out))


def draw_rng(seed: int, stage: int, draw: int) -> np.random.Generator:
    return np.random.default_rng([seed, stage, draw])


@dataclass
class ClassifyOptions:
    labels_per_class: int | None = None  # None: the protocol's default; 0: every pool label
    repeats: int | None = None
    val_draws: int | None = None
    c_grid: tuple[float, ...] | None = None
    C: float | None = None  # fixed C: no validation search
    seed: int = 0
    solver: str = "auto"
    standardize: bool = False
    bn_stats: str = "eval"
    device: str = "cpu"
    batch_size: int = 256
    num_workers: int = 0
    data_root: str | None = None
    store_dtype: str = "float16"
    use_cache: bool = True
    cache_root: str | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    progress: bool = False
    extras: dict = field(default_factory=dict)


def protocol_for(dataset: str) -> tuple[Protocol, "object"]:
    """The protocol of a ``--dataset`` value and its parsed spec (a folder gets ``folder``)."""
    from gan_probe.data import parse_dataset

    spec = parse_dataset(dataset)
    if spec.path is not None:
        return PROTOCOLS["folder"], spec
    if spec.name not in PROTOCOLS:
        raise GanProbeError(f"no classification protocol for {spec.name}; use digits, cifar10, svhn "
                            "or an image folder with one sub-folder per class")
    return PROTOCOLS[spec.name], spec


def load_split(protocol: Protocol, spec, space, checkpoint, opts: ClassifyOptions, config) -> Split:
    """Extract (or fetch from the cache) the protocol's features and fix its three index sets."""
    from gan_probe.data import load_dataset, parse_dataset

    size = space.image_size or config.image_size
    channels = space.channels or config.channels
    root = opts.data_root
    disc = space.module is not None
    ckpt_sha = cf.checkpoint_fingerprint(checkpoint)
    seed = opts.seed if space.name == "random-disc" else 0

    if protocol.name == "folder":
        everything = load_dataset(spec, size, channels, root)
        labels = cf.dataset_labels(everything)
        if len(np.unique(labels)) < 2:
            raise GanProbeError(f"{spec.path} needs one sub-folder per class (at least two classes)")
        rest, test_rows = stratified_split(np.arange(len(labels)), labels, FOLDER_TEST_FRACTION)
        pool, val = stratified_split(rest, labels, VAL_FRACTION)
        datasets = {"all": (everything, spec)}
        bn_pool_rows = rest
    else:
        train_spec, test_spec = parse_dataset(protocol.train), parse_dataset(protocol.test)
        datasets = {"train": (load_dataset(train_spec, size, channels, root), train_spec),
                    "test": (load_dataset(test_spec, size, channels, root), test_spec)}
        bn_pool_rows = None
    bn_mode = opts.bn_stats if disc else "n/a"
    bn_pool = f"{protocol.train or spec}:{cf.indices_digest(bn_pool_rows)}" if bn_mode == "recompute" else ""

    keys = {name: cf.features_key(dataset=str(s), split=s.split, data=cf.data_fingerprint(s, root),
                                  checkpoint_sha256=ckpt_sha, features=space.name, bn_stats=bn_mode,
                                  bn_pool=bn_pool, image_size=size, channels=channels, seed=seed)
            for name, (_, s) in datasets.items()}
    found = {name: cf.lookup_features(keys[name], len(ds), space.dim, opts.store_dtype, _root(opts))
             if opts.use_cache else None for name, (ds, _) in datasets.items()}
    if bn_mode == "recompute" and any(v is None for v in found.values()):
        from torch.utils.data import Subset

        pool_ds = datasets["all"][0] if "all" in datasets else datasets["train"][0]
        if bn_pool_rows is not None:
            pool_ds = Subset(pool_ds, bn_pool_rows.tolist())
        cf.recompute_bn_statistics(space.module, space, pool_ds, batch_size=128, device=opts.device,
                                   progress=opts.progress)
    sets = {}
    for name, (ds, s) in datasets.items():
        sets[name] = found[name] or cf.extract_features(
            space, ds, key=keys[name], batch_size=opts.batch_size, num_workers=opts.num_workers,
            store_dtype=opts.store_dtype, use_cache=opts.use_cache, cache_root=_root(opts),
            progress=opts.progress, description=f"{space.name} features: {s}")
    if protocol.name == "folder":
        return Split(sets["all"], pool, val, sets["all"], test_rows)
    train = sets["train"]
    if protocol.name in SHUFFLED_VALIDATION:
        pool, val = shuffled_validation(len(train), SHUFFLED_VALIDATION[protocol.name])
    else:
        pool, val = stratified_split(np.arange(len(train)), train.labels, VAL_FRACTION)
    return Split(train, pool, val, sets["test"], np.arange(len(sets["test"])))


def _root(opts: ClassifyOptions) -> Path | None:
    return Path(opts.cache_root) if opts.cache_root else None


def _rows(fs: cf.FeatureSet, idx: np.ndarray) -> np.ndarray:
    return np.asarray(fs.features[np.sort(idx)]) if len(idx) != len(fs) else fs.features


def evaluate_protocol(split: Split, protocol: Protocol, opts: ClassifyOptions) -> dict:
    """C search on the validation set, then the test accuracy of each repeat."""
    per_class = protocol.labels_per_class if opts.labels_per_class is None else opts.labels_per_class
    all_labels = per_class == 0
    repeats = 1 if all_labels else (opts.repeats or protocol.repeats)
    val_draws = 1 if all_labels else (opts.val_draws or protocol.val_draws)
    grid = tuple(opts.c_grid or protocol.c_grid)
    solver = resolve_solver(opts.solver)
    device = torch.device(opts.device)
    y_train = split.train.labels
    shift = scale = None
    if opts.standardize:  # statistics of the unlabelled pool (no labels used)
        shift, scale = standardization(_rows(split.train, split.pool), opts.chunk_bytes)

    def fit(idx: np.ndarray, C: float, x=None, warm: LinearModel | None = None) -> LinearModel:
        idx = np.sort(idx)
        return fit_linear_svm(_rows(split.train, idx) if x is None else x, y_train[idx], C, solver=solver,
                              device=device, shift=shift, scale=scale, chunk_bytes=opts.chunk_bytes,
                              warm_start=warm)

    def draw(stage: int, i: int) -> np.ndarray:
        return split.pool if all_labels else draw_labels(y_train, split.pool, per_class, draw_rng(opts.seed, stage, i))

    t0 = time.perf_counter()
    validation, last = [], {}
    if opts.C is not None:
        best_c = float(opts.C)
    else:
        x_val, y_val = _rows(split.train, split.validation), y_train[np.sort(split.validation)]
        draws = [draw(STAGE_VALIDATION, i) for i in range(val_draws)]
        accs = {C: [] for C in grid}
        # warm starts: this draw's fit at the previous (smaller) C, else the last draw's at the same C
        for idx in draws:
            x_draw, warm = _rows(split.train, np.sort(idx)), None
            for C in sorted(grid):
                warm = last[C] = fit(idx, C, x_draw, warm or last.get(C))
                accs[C].append(float(np.mean(warm.predict(x_val, opts.chunk_bytes) == y_val)))
        del x_draw, warm  # the rows of the last draw (kept by the fits' warm states) go with `last` below
        for C in grid:
            validation.append({"C": C, "accuracy_mean": float(np.mean(accs[C])),
                               "accuracy_std": float(np.std(accs[C]))})
        best_c = max(validation, key=lambda v: (v["accuracy_mean"], -v["C"]))["C"]  # ties: the smaller C
    t_val = time.perf_counter() - t0

    x_test = _rows(split.test, split.test_rows)
    y_test = split.test.labels[np.sort(split.test_rows)]
    values, n_labels = [], 0
    # the test fits start from the chosen C's last validation fit (its weights only: other rows)
    model = replace(last[best_c], warm=None) if best_c in last else None
    last.clear()
    for r in range(repeats):
        idx = np.union1d(split.pool, split.validation) if all_labels else draw(STAGE_TEST, r)
        n_labels = len(idx)
        model = fit(idx, best_c, warm=model)
        values.append(float(np.mean(model.predict(x_test, opts.chunk_bytes) == y_test)))
    acc = np.asarray(values)
    err = 1 - acc
    return {
        "labels_per_class": per_class,
        "labels": n_labels,
        "repeats": repeats,
        "val_draws": val_draws if opts.C is None else 0,
        "C": best_c,
        "c_grid": list(grid) if opts.C is None else [best_c],
        "validation": validation,
        "accuracy": {"mean": float(acc.mean()), "std": float(acc.std()), "values": values},
        "error": {"mean": float(err.mean()), "std": float(err.std()),
                  "spread": protocol.spread, "plus_minus": float(protocol.spread * err.std())},
        "solver": solver,
        "standardize": opts.standardize,
        "sizes": {"pool": int(len(split.pool)), "validation": int(len(split.validation)),
                  "test": int(len(split.test_rows))},
        "time_s": {"validation": round(t_val, 3), "test": round(time.perf_counter() - t0 - t_val, 3)},
    }


def classify(checkpoint, features: str, dataset: str, opts: ClassifyOptions) -> dict:
    """The whole experiment for one checkpoint: features, protocol, SVMs; a JSON-able summary."""
    from gan_probe.checkpoint import load_checkpoint, model_config, resolve_checkpoint

    if opts.bn_stats not in cf.BN_MODES:
        raise GanProbeError(f"unknown --bn-stats {opts.bn_stats!r}; choose one of {', '.join(cf.BN_MODES)}")
    _check_counts(opts)
    protocol, spec = protocol_for(dataset)
    path = resolve_checkpoint(checkpoint)
    config = model_config(load_checkpoint(path))
    t0 = time.perf_counter()
    space = cf.make_feature_space(features, path, torch.device(opts.device), seed=opts.seed)
    split = load_split(protocol, spec, space, path, opts, config)
    split.check_disjoint()
    t_features = time.perf_counter() - t0
    result = evaluate_protocol(split, protocol, opts)
    result["time_s"]["features"] = round(t_features, 3)
    paper = PAPER.get((protocol.name, result["labels_per_class"]))
    return {
        "command": "classify",
        "checkpoint": str(path),
        "features": space.name,
        "feature_dim": space.dim,
        "dataset": str(spec) if protocol.name == "folder" else protocol.name,
        "protocol": protocol.name,
        "bn_stats": opts.bn_stats if space.module is not None else "n/a",
        "seed": opts.seed,
        "device": str(opts.device),
        "feature_storage": str(split.train.features.dtype),
        "cache_keys": {"train": split.train.key, "test": split.test.key},
        "from_cache": bool(split.train.from_cache and split.test.from_cache),
        "report": protocol.report,
        "paper": paper,
        **result,
    }


def _check_counts(opts: ClassifyOptions) -> None:
    """Fail on a bad option before any feature is extracted."""
    resolve_solver(opts.solver)
    if opts.store_dtype not in cf.STORE_DTYPES:
        raise GanProbeError(f"unknown feature storage dtype {opts.store_dtype!r}; choose "
                            f"{' or '.join(cf.STORE_DTYPES)}")
    for name in ("labels_per_class", "repeats", "val_draws"):
        v = getattr(opts, name)
        if v is not None and v < (0 if name == "labels_per_class" else 1):
            raise GanProbeError(f"--{name.replace('_', '-')} must be >= {0 if name == 'labels_per_class' else 1}, "
                                f"got {v}")
    if opts.C is not None and not opts.C > 0:
        raise GanProbeError(f"--c must be > 0, got {opts.C}")
    if opts.c_grid is not None and (not opts.c_grid or any(not c > 0 for c in opts.c_grid)):
        raise GanProbeError("--c-grid needs positive values, e.g. 1e-4,1e-3,1e-2")
