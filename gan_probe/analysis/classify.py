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

import os
import time
from dataclasses import asdict, dataclass, field, replace
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
GRID_STEP, GRID_MAX_STEPS = 10.0, 3  # an edge C extends the grid by x10 steps, at most 3 (x1000)
BASELINES = ("random-disc", "pixels")  # what every run is compared with, paired over the same draws

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
    extend_grid: bool = True  # False: the grid is part of the protocol (a chosen C at an edge only warns)


PROTOCOLS = {
    "digits": Protocol("digits", "digits:train", "digits:test"),
    "cifar10": Protocol("cifar10", "cifar10:train", "cifar10:test", labels_per_class=0, repeats=10),
    "svhn": Protocol("svhn", "svhn:train", "svhn:test", labels_per_class=100, repeats=100, val_draws=10,
                     c_grid=AUTHORS_C_GRID, spread=1.96, report="error", extend_grid=False),
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
            raise GanProbeError(f"class {c} has {len(members)} images in the pool, fewer than the "
                                f"{per_class} labels per class asked for")
        out.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(out))


def draw_rng(seed: int, stage: int, draw: int) -> np.random.Generator:
    return np.random.default_rng([seed, stage, draw])


@dataclass
class ClassifyOptions:
    labels_per_class: int | None = None  # None: the protocol's default; 0: every pool label
    labels: int | None = None  # or: total labels, split evenly over the classes (SVHN's 1000)
    repeats: int | None = None
    val_draws: int | None = None
    c_grid: tuple[float, ...] | None = None
    C: float | None = None  # fixed C: no validation search
    seed: int = 0
    solver: str = "auto"
    standardize: bool = False
    bn_stats: str = "auto"  # auto: recompute for random-disc (the fair control), eval for a trained D
    extend_grid: bool | None = None  # None: extend the protocol's default grid, except svhn's (the
    # authors': warn); a c_grid given is searched as given (warn)
    baselines: tuple[str, ...] = BASELINES  # compared with the features, paired over the same draws
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


def load_split(protocol: Protocol, spec, space, checkpoint, opts: ClassifyOptions, config, d=None) -> Split | None:
    """Extract (or fetch from the cache) the protocol's features and fix its three index sets.

    Under torchrun (``d``) the extraction is shared by every rank; rank 0 alone reads the cache
    and gets the split; the other ranks get None."""
    from gan_probe.data import load_dataset, parse_dataset
    from gan_probe.distributed import Dist, broadcast

    d = d or Dist()

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
             if opts.use_cache and d.main else None for name, (ds, _) in datasets.items()}
    hits = broadcast({name: v is not None for name, v in found.items()}, d)  # rank 0's lookups decide
    if bn_mode == "recompute" and not all(hits.values()):
        # every rank recomputes over the whole pool: sharded float32 sums would differ in the last bit
        from torch.utils.data import Subset

        pool_ds = datasets["all"][0] if "all" in datasets else datasets["train"][0]
        if bn_pool_rows is not None:
            pool_ds = Subset(pool_ds, bn_pool_rows.tolist())
        cf.recompute_bn_statistics(space.module, space, pool_ds, batch_size=128, device=opts.device,
                                   progress=opts.progress)
    sets = {}
    for name, (ds, s) in datasets.items():
        sets[name] = found[name] if hits[name] else cf.extract_features(
            space, ds, key=keys[name], batch_size=opts.batch_size, num_workers=opts.num_workers,
            store_dtype=opts.store_dtype, use_cache=opts.use_cache, cache_root=_root(opts),
            progress=opts.progress and d.main, description=f"{space.name} features: {s}", dist=d)
    if not d.main:
        return None
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
    extend = (protocol.extend_grid and opts.c_grid is None) if opts.extend_grid is None else opts.extend_grid
    c_warnings: list[str] = []
    search = c_search(grid, validation, extend, c_warnings)
    if opts.C is not None:
        best_c = float(opts.C)
    else:
        x_val, y_val = _rows(split.train, split.validation), y_train[np.sort(split.validation)]
        draws = [draw(STAGE_VALIDATION, i) for i in range(val_draws)]

        def score(cs: list[float]) -> None:
            """Validation accuracy of each C in ``cs`` over the draws. Warm starts: this draw's fit at the
            previous (smaller) C, else the last draw's fit at the same C."""
            accs: dict[float, list[float]] = {C: [] for C in cs}
            for idx in draws:
                x_draw, warm = _rows(split.train, np.sort(idx)), None
                for C in sorted(cs):
                    warm = last[C] = fit(idx, C, x_draw, warm or last.get(C))
                    accs[C].append(float(np.mean(warm.predict(x_val, opts.chunk_bytes) == y_val)))
            for C in cs:
                validation.append({"C": C, "accuracy_mean": float(np.mean(accs[C])),
                                   "accuracy_std": float(np.std(accs[C]))})

        score([next(search) for _ in grid])  # the grid, then c_search's steps past an edge, one at a time
        for C in search:
            score([C])
        best_c = best_of(validation)["C"]  # ties: the smaller C
    t_val = time.perf_counter() - t0

    x_test = _rows(split.test, split.test_rows)
    y_test = split.test.labels[np.sort(split.test_rows)]
    values, n_labels, draw_ids = [], 0, []
    # the test fits start from the chosen C's last validation fit (its weights only: other rows)
    model = replace(last[best_c], warm=None) if best_c in last else None
    last.clear()
    for r in range(repeats):
        idx = np.union1d(split.pool, split.validation) if all_labels else draw(STAGE_TEST, r)
        n_labels = len(idx)
        draw_ids.append(cf.indices_digest(idx))
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
        "c_extended": [v["C"] for v in validation[len(grid):]],
        "c_warnings": c_warnings,
        "validation": validation,
        "draws": draw_ids,
        "accuracy": {"mean": float(acc.mean()), "std": float(acc.std()), "values": values},
        "error": {"mean": float(err.mean()), "std": float(err.std()),
                  "spread": protocol.spread, "plus_minus": float(protocol.spread * err.std())},
        "solver": solver,
        "standardize": opts.standardize,
        "sizes": {"pool": int(len(split.pool)), "validation": int(len(split.validation)),
                  "test": int(len(split.test_rows))},
        "time_s": {"validation": round(t_val, 3), "test": round(time.perf_counter() - t0 - t_val, 3)},
    }


def c_search(grid: tuple[float, ...], validation: list[dict], extend: bool, warnings: list[str]):
    """The C values to score: ``grid``, then, while the best C (read from ``validation``, which the
    caller fills as it scores each value) sits at an edge of what was tried, one more x10 step past
    that edge, as long as validation accuracy rises, at most GRID_MAX_STEPS steps per side. With
    ``extend`` False (a protocol's fixed grid) or at the bound, a warning goes into ``warnings``."""
    yield from grid
    if not validation:
        return
    for up in (True, False):
        before = None  # the best mean accuracy before the last step on this side
        for step in range(GRID_MAX_STEPS + 1):
            best = best_of(validation)
            tried = [v["C"] for v in validation]
            edge = max(tried) if up else min(tried)
            if best["C"] != edge or (before is not None and best["accuracy_mean"] <= before):
                break  # inside the grid, or no longer rising (a tie going down keeps the smaller C)
            if not extend or step == GRID_MAX_STEPS:
                why = ("the grid is part of this protocol" if not extend else
                       f"still rising after {GRID_MAX_STEPS} x{GRID_STEP:g} steps")
                warnings.append(f"chosen C={edge:g} is at the {'top' if up else 'bottom'} of the searched grid "
                                f"({why}): a C {'above' if up else 'below'} it may score better, so these "
                                "features may be under-tuned")
                break
            before = best["accuracy_mean"]
            yield edge * GRID_STEP if up else edge / GRID_STEP


def best_of(validation: list[dict]) -> dict:
    """The validation entry with the highest mean accuracy (ties: the smaller C)."""
    return max(validation, key=lambda v: (v["accuracy_mean"], -v["C"]))


def class_count(dataset: str) -> int:
    """Classes of a ``dataset`` value: a folder's class sub-folders, else 10."""
    protocol, spec = protocol_for(dataset)
    if protocol.name == "folder":
        return len({p.parent.relative_to(spec.path).parts[0] for p in spec.path.rglob("*")
                    if p.is_file() and p.parent != spec.path}) or 1
    return 10


def resolve_labels(opts: ClassifyOptions, dataset: str) -> ClassifyOptions:
    """``opts`` with ``labels`` (a total) turned into ``labels_per_class``."""
    if opts.labels is None:
        return opts
    if opts.labels_per_class is not None:
        raise GanProbeError("labels: give a total number of labels or a number per class, not both",
                            param="labels")
    n_classes = class_count(dataset)
    if opts.labels < n_classes or opts.labels % n_classes:
        raise GanProbeError(f"labels {opts.labels} must be a positive multiple of the {n_classes} classes",
                            param="labels")
    return replace(opts, labels_per_class=opts.labels // n_classes)


def classify(checkpoint, features: str, dataset: str, opts: ClassifyOptions) -> dict:
    """The whole experiment for one checkpoint: features, protocol, SVMs; a JSON-able summary."""
    from gan_probe.checkpoint import resolve_checkpoint
    from gan_probe.distributed import init_distributed
    from gan_probe.models.sources import model_info

    _check_counts(opts)
    d = init_distributed(str(opts.device))  # under torchrun: this process's device, the group joined
    opts = replace(resolve_labels(opts, dataset), device=str(d.device),
                   bn_stats=cf.bn_mode_for(features, opts.bn_stats))
    protocol, spec = protocol_for(dataset)
    path = resolve_checkpoint(checkpoint)
    config = model_info(path, "discriminator")  # a DCGANConfig, or any model source's info
    t0 = time.perf_counter()
    from gan_probe.distributed import on_every_rank

    space = on_every_rank(lambda: cf.make_feature_space(features, path, torch.device(opts.device), seed=opts.seed), d)
    split = load_split(protocol, spec, space, path, opts, config, d)
    if split is None:  # torchrun, rank > 0: its share of the features is done; rank 0 fits the SVMs
        return None
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


BASELINE_KEYS = ("features", "feature_dim", "bn_stats", "standardize", "C", "c_grid", "c_extended", "c_warnings",
                 "validation", "accuracy", "error", "draws", "cache_keys", "from_cache")


def classify_with_baselines(checkpoint, features: str, dataset: str, opts: ClassifyOptions) -> dict:
    """:func:`classify` for ``features``, then for each of ``opts.baselines`` (the fair random D:
    BatchNorm ``auto``, i.e. recomputed; pixels) on the same protocol, seed and so the same label
    draws; each compared with ``features`` draw by draw (:func:`paired_comparison`), and the
    verdict (:func:`verdict`). With a fixed ``C`` every feature space uses it; else each has its
    own C search."""
    from gan_probe.distributed import broadcast, current

    results = classify(checkpoint, features, dataset, opts)
    space = broadcast(results["features"] if results is not None else None, current())
    baselines, paired = {}, {}
    for name in dict.fromkeys(opts.baselines):
        if name == space:
            continue
        other = classify(checkpoint, name, dataset, replace(opts, bn_stats="auto"))
        if results is None:  # torchrun, rank > 0
            continue
        baselines[name] = {k: other[k] for k in BASELINE_KEYS}
        results["time_s"][name] = round(sum(other["time_s"].values()), 3)  # timings stay under time_s
        paired[name] = paired_comparison(results, other)
    if results is None:
        return None
    results.update(baselines=baselines, paired=paired, verdict=verdict(results["features"], paired))
    return results


def paired_comparison(ours: dict, base: dict) -> dict:
    """Test accuracy of ``ours`` minus ``base``, draw by draw. Both must have scored the very same
    label draws (their ``draws``, the digests of each draw's indices, must be equal)."""
    if ours["draws"] != base["draws"]:
        raise AssertionError(f"{ours['features']} and {base['features']} were scored on different label draws")
    d = np.asarray(ours["accuracy"]["values"]) - np.asarray(base["accuracy"]["values"])
    return {"baseline": base["features"], "draws": len(d), "same_draws": True,
            "difference": {"mean": float(d.mean()), "std": float(d.std()), "values": d.tolist()},
            "favour_features": int((d > 0).sum()), "favour_baseline": int((d < 0).sum()),
            "ties": int((d == 0).sum())}


def verdict(features: str, paired: dict) -> dict:
    """What the paired comparison with the random network shows, in one sentence. A difference
    counts only when its mean exceeds its spread (the std of the per-draw differences)."""
    p = paired.get("random-disc")
    if features == "random-disc":
        return {"gain_over_random": None, "text": "no verdict: these are the random network's features (the control)"}
    if p is None:
        return {"gain_over_random": None,
                "text": "no verdict: not compared with a random network (the random-disc baseline was not run)"}
    m, sd, n = 100 * p["difference"]["mean"], 100 * p["difference"]["std"], p["draws"]
    if n < 2:
        return {"gain_over_random": None,
                "text": f"no verdict: one draw ({m:+.2f} points vs random-disc) has no spread to judge by"}
    tally = f"{n} paired draws, {p['favour_features']} favour {features}, {p['favour_baseline']} random-disc"
    if m > sd:
        return {"gain_over_random": True,
                "text": f"{features} features beat a random network by {m:+.2f} ± {sd:.2f} points ({tally})"}
    if -m > sd:
        return {"gain_over_random": False,
                "text": f"{features} features do worse than a random network by {-m:.2f} ± {sd:.2f} points ({tally})"}
    return {"gain_over_random": False,
            "text": f"{features} features add nothing measurable over a random network on this data: "
                    f"{m:+.2f} ± {sd:.2f} points ({tally})"}


def run_classify(checkpoint, features: str = "disc", dataset: str = "digits", opts: ClassifyOptions | None = None,
                 *, out: str | os.PathLike | None = None) -> dict:
    """``gan-probe classify``: :func:`classify`, its summary.json in ``out`` (default
    ``RUN_DIR/analysis/classify``) and a copy per setting in ``out/runs/``; returns the summary
    (the object ``--json`` prints)."""
    from gan_probe import runs

    opts = opts or ClassifyOptions()
    results = classify_with_baselines(checkpoint, features, dataset, opts)
    if results is None:  # torchrun, rank > 0: rank 0 writes
        return None
    folder = Path(out) if out is not None else runs.default_out(results["checkpoint"], "classify")
    settings = {k: v for k, v in asdict(opts).items() if k not in ("progress", "extras")}
    settings.update(features=features, dataset=dataset, device=results["device"],
                    c_grid=None if opts.c_grid is None else list(opts.c_grid), baselines=list(opts.baselines))
    summary = runs.new_summary("classify", results, argv=_command_line(checkpoint, features, dataset, opts, out),
                               settings=settings, provenance=runs.provenance(checkpoint, dataset=dataset),
                               seed=opts.seed, files={"summary": str(folder / runs.SUMMARY_FILE)},
                               paper_figure="Table 2" if results["protocol"] == "svhn" else "Table 1")
    runs.write_summary(folder, summary)
    runs.write_json(folder / "runs" / f"{summary['features']}_{summary['protocol']}_n{summary['labels_per_class']}.json",
                    summary)
    return summary


def _command_line(checkpoint, features: str, dataset: str, opts: ClassifyOptions, out) -> list[str]:
    """The ``gan-probe classify`` line that redoes a run (the options that differ from the defaults)."""
    from gan_probe import runs

    default = ClassifyOptions()
    flags = {name: getattr(opts, name) for name in ("labels_per_class", "labels", "repeats", "val_draws", "seed",
                                                    "solver", "bn_stats", "batch_size", "num_workers", "data_root")
             if getattr(opts, name) != getattr(default, name)}
    flags.update(c_grid=opts.c_grid, c=opts.C, standardize=opts.standardize,
                 store=None if opts.store_dtype == default.store_dtype else opts.store_dtype,
                 no_cache=not opts.use_cache, no_baselines=not opts.baselines,
                 extend_grid=opts.extend_grid is True, no_extend_grid=opts.extend_grid is False,
                 chunk_mb=None if opts.chunk_bytes == default.chunk_bytes else opts.chunk_bytes >> 20, out=out)
    return runs.command_line("classify", checkpoint, "--features", features, "--dataset", dataset, **flags)


def _check_counts(opts: ClassifyOptions) -> None:
    """Fail on a bad option before any feature is extracted."""
    resolve_solver(opts.solver)
    if opts.store_dtype not in cf.STORE_DTYPES:
        raise GanProbeError(f"unknown feature storage dtype {opts.store_dtype!r}; choose "
                            f"{' or '.join(cf.STORE_DTYPES)}")
    for name in ("labels_per_class", "repeats", "val_draws"):
        v = getattr(opts, name)
        if v is not None and v < (0 if name == "labels_per_class" else 1):
            raise GanProbeError(f"{name} must be >= {0 if name == 'labels_per_class' else 1}, got {v}", param=name)
    if opts.C is not None and not opts.C > 0:
        raise GanProbeError(f"C must be > 0, got {opts.C}", param="C")
    if opts.c_grid is not None and (not opts.c_grid or any(not c > 0 for c in opts.c_grid)):
        raise GanProbeError("c_grid needs positive values, e.g. 1e-4,1e-3,1e-2", param="c_grid")
