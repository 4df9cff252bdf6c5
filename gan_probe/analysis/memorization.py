"""Does a generator copy its training set? Statistics on feature arrays.

Pure functions: every input is an N x dim feature array (generated samples,
training images, held-out test images, in one feature space) and every output
a number, an array or a JSON-ready dict. Loading images and writing files live
in :mod:`gan_probe.analysis.memorization_run`.

- **nearest training distance** ``d1`` of each sample (exact, :func:`gan_probe.knn.knn`);
- **relative distance** (Carlini et al. 2023): ``d1 / (alpha * mean(d2 .. d_{n+1}))``,
  the nearest training image's distance against the typical distance of the next
  ``n`` (``alpha`` = 0.5, ``n`` = 50): a copy sits much closer to one training
  image than to the rest (< 1 means "closer than half the typical distance");
- **copy flags**: relative distance below a threshold calibrated on held-out
  TEST images: the ``copy_quantile`` (default 1 %) quantile of the test -> train
  relative distances, i.e. a sample is flagged when it is closer to one training
  image than 99 % of real unseen images are. Without TEST, a fixed cut
  (:data:`FIXED_COPY_THRESHOLD` = 1/3) is used and reported as such;
- **C_T** (Meehan, Chaudhuri, Dasgupta 2020): PCA to 64-d fit on train, KMeans
  cells (k = 3, n_init = 10) fit on train; in each cell, the distance of test and
  generated points to their nearest training point of that cell, a Mann-Whitney
  U (generated "less" than test) as a Z score; cells with more than 20
  generated points kept; C_T = test-share-weighted mean of the cells' Z.
  C_T << 0: samples sit closer to the training set than unseen real data does
  (copying); C_T >> 0: farther (underfitting); near 0: neither;
- **AuthPct** (Alaa et al. 2022, as dgm-eval computes it): the share of samples
  farther from their nearest training image r* than r* is from its own nearest
  training neighbour (100 = every sample "authentic").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from gan_probe.errors import GanProbeError
from gan_probe.knn import knn

FIXED_COPY_THRESHOLD = 1.0 / 3.0
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


@dataclass(frozen=True)
class MemorizationSettings:
    k: int = 5                    # nearest training images shown per sample in the grid
    alpha: float = 0.5            # relative distance: d1 / (alpha * mean of the next n)
    n_rel: int = 50
    copy_quantile: float = 0.01   # flags: below this quantile of the test -> train relative distances
    ct_pca: int = 64
    ct_cells: int = 3
    ct_min_gen: int = 20          # keep cells with more than this many generated points
    ct_significant: float = 2.0   # |C_T| beyond this is read as copying (<0) / underfitting (>0)
    flag_excess: float = 5.0      # per-sample copying: flagged share > flag_excess x copy_quantile
    seed: int = 0                 # PCA / KMeans seed
    block_size: int = 0           # k-NN query rows per block (0: automatic)
    device: str = "cpu"

    def __post_init__(self):
        if not self.alpha > 0:
            raise GanProbeError(f"alpha must be > 0, got {self.alpha}", param="alpha")
        if not 0 < self.copy_quantile < 1:
            raise GanProbeError(f"copy_quantile must be strictly between 0 and 1, got {self.copy_quantile}",
                                param="copy_quantile")
        for name in ("k", "n_rel", "ct_cells", "ct_pca"):
            if getattr(self, name) < 1:
                raise GanProbeError(f"{name} must be >= 1, got {getattr(self, name)}", param=name)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_features(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise GanProbeError(f"{what}: no images (got features of shape {x.shape})")
    return x


def nearest_train(queries: np.ndarray, train: np.ndarray, n_neighbours: int,
                  settings: MemorizationSettings = MemorizationSettings()) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of each query's ``n_neighbours`` nearest training points (exact)."""
    return knn(queries, train, min(n_neighbours, len(train)), block_size=settings.block_size or None,
               device=settings.device)


def relative_distance(distances: np.ndarray, alpha: float, n_rel: int) -> np.ndarray:
    """``d1 / (alpha * mean(d2 .. d_{n_rel+1}))`` per row of sorted neighbour distances."""
    if distances.shape[1] < 2:
        raise GanProbeError("the relative distance needs at least 2 training images")
    rest = distances[:, 1:1 + n_rel].mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = distances[:, 0] / (alpha * rest)
    # every neighbour at distance 0 (duplicated training images): a copy by any reading
    return np.where(rest > 0, rel, 0.0)


def copy_threshold(test_relative: np.ndarray | None, quantile: float) -> tuple[float, str]:
    """The relative distance below which a sample is flagged, and the rule that set it."""
    if test_relative is None:
        return FIXED_COPY_THRESHOLD, (f"fixed cut {FIXED_COPY_THRESHOLD:.3f} (no --test to calibrate on; "
                                      "d1 below a sixth of the mean distance to the next neighbours)")
    if not 0 < quantile < 1:
        raise GanProbeError(f"copy quantile must be in (0, 1), got {quantile}")
    t = float(np.quantile(test_relative, quantile))
    return t, (f"{quantile:.0%} quantile of the test -> train relative distances "
               f"({len(test_relative)} held-out images): flagged = closer to one training image "
               f"than {1 - quantile:.0%} of unseen real images")


def distance_quantiles(d: np.ndarray) -> dict[str, float]:
    return {f"q{int(round(q * 100)):02d}": float(np.quantile(d, q)) for q in QUANTILES} | {"mean": float(d.mean())}


def auth_pct(gen_d1: np.ndarray, gen_nn: np.ndarray, train_self_d1: np.ndarray) -> float:
    """Percent of samples g with d(g, r*) > d(r*, its nearest other training point)."""
    return float(100.0 * np.mean(gen_d1 > train_self_d1[gen_nn]))


def mann_whitney_z(gen: np.ndarray, test: np.ndarray) -> float:
    """Z_U = (U - mn/2 + 0.5) / sqrt(mn(m+n+1)/12), U of generated vs test (ties count 1/2)."""
    from scipy.stats import mannwhitneyu

    m, n = len(gen), len(test)
    u = float(mannwhitneyu(gen, test, alternative="less").statistic)
    return (u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12)


def ct_statistic(train: np.ndarray, test: np.ndarray | None, gen: np.ndarray,
                 settings: MemorizationSettings = MemorizationSettings()) -> dict:
    """Meehan et al.'s C_T with its per-cell Z values (see the module docstring)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    if test is None or len(test) == 0:
        raise GanProbeError("the C_T data-copying test needs held-out real images: pass --test "
                            "(e.g. --test digits:test or a folder of images never used in training)")
    train = _check_features(train, "TRAIN").astype(np.float64)
    test = np.asarray(test, dtype=np.float64)
    gen = _check_features(gen, "GEN").astype(np.float64)
    if len(train) < settings.ct_cells:
        raise GanProbeError(f"C_T needs at least {settings.ct_cells} training images (one per cell)")
    dims = min(settings.ct_pca, len(train), train.shape[1])
    if train.shape[1] > dims:
        pca = PCA(n_components=dims, random_state=settings.seed).fit(train)
        train, test, gen = pca.transform(train), pca.transform(test), pca.transform(gen)
    km = KMeans(n_clusters=settings.ct_cells, n_init=10, random_state=settings.seed).fit(train)
    train_cell, test_cell, gen_cell = km.labels_, km.predict(test), km.predict(gen)

    cells, notes = [], []
    for c in range(settings.ct_cells):
        t_in, q_in, g_in = train[train_cell == c], test[test_cell == c], gen[gen_cell == c]
        cell = {"cell": c, "n_train": int(len(t_in)), "n_test": int(len(q_in)), "n_gen": int(len(g_in)),
                "z": None, "used": False}
        if len(g_in) <= settings.ct_min_gen:
            cell["skipped"] = f"{len(g_in)} generated points (needs > {settings.ct_min_gen})"
        elif len(q_in) == 0:
            cell["skipped"] = "no test point"
            notes.append(f"cell {c} holds {len(g_in)} generated points but no test point, so it is left out "
                         f"of C_T (pass more --test images or fewer --ct-cells)")
        else:
            dq = knn(q_in, t_in, 1, device=settings.device)[0][:, 0]
            dg = knn(g_in, t_in, 1, device=settings.device)[0][:, 0]
            cell["z"] = mann_whitney_z(dg, dq)
            cell["used"] = True
            cell["median_dist_test"] = float(np.median(dq))
            cell["median_dist_gen"] = float(np.median(dg))
        cells.append(cell)
    used = [c for c in cells if c["used"]]
    if not used:
        notes.append(f"no cell has more than {settings.ct_min_gen} generated points and a test point: "
                     "C_T is undefined (generate more samples with --n)")
        ct = None
    else:
        w = np.array([c["n_test"] for c in used], dtype=np.float64) / len(test)
        ct = float(np.sum(w * np.array([c["z"] for c in used])) / w.sum())
    return {"ct": ct, "cells": cells, "pca_dims": int(dims), "notes": notes}


def features_to_memorization(gen: np.ndarray, train: np.ndarray, test: np.ndarray | None,
                             settings: MemorizationSettings = MemorizationSettings()) -> dict:
    """Every statistic from features: per-sample arrays under ``per_sample`` plus the summary."""
    gen = _check_features(gen, "GEN")
    train = _check_features(train, "TRAIN")
    if test is not None:
        test = _check_features(test, "TEST")
    if len(train) < 2:
        raise GanProbeError("TRAIN needs at least 2 images for nearest-neighbour statistics")
    for what, x in (("GEN", gen), ("TEST", test)):
        if x is not None and x.shape[1] != train.shape[1]:
            raise GanProbeError(f"{what} features have {x.shape[1]} dimensions but TRAIN has {train.shape[1]}")
    n_rel = min(settings.n_rel, len(train) - 1)
    n_nb = max(settings.k, n_rel + 1)
    gd, gi = nearest_train(gen, train, n_nb, settings)
    gen_rel = relative_distance(gd, settings.alpha, n_rel)
    td = test_rel = None
    if test is not None:
        td, _ = nearest_train(test, train, n_rel + 1, settings)
        test_rel = relative_distance(td, settings.alpha, n_rel)
    threshold, rule = copy_threshold(test_rel, settings.copy_quantile)
    flagged = gen_rel < threshold
    self_d, _ = knn(train, train, 1, exclude_self=True, block_size=settings.block_size or None,
                    device=settings.device)

    notes = []
    if n_rel < settings.n_rel:
        notes.append(f"only {len(train)} training images: the relative distance averages the next {n_rel}")
    if test is not None:
        try:
            ct = ct_statistic(train, test, gen, settings)
        except GanProbeError as e:  # e.g. fewer training images than cells
            ct = {"ct": None, "cells": [], "notes": [str(e)]}
    else:
        ct = {"ct": None, "cells": [], "notes": ["C_T not computed: it needs held-out real images (--test)"]}
    notes += ct["notes"]

    summary = {
        "n_gen": int(len(gen)), "n_train": int(len(train)), "n_test": int(len(test)) if test is not None else 0,
        "feature_dim": int(train.shape[1]),
        "ct": ct["ct"], "ct_cells": ct["cells"], "ct_pca_dims": ct.get("pca_dims"),
        "auth_pct": auth_pct(gd[:, 0], gi[:, 0], self_d[:, 0]),
        "copy_threshold": float(threshold), "copy_threshold_rule": rule,
        "n_flagged": int(flagged.sum()), "flagged_fraction": float(flagged.mean()),
        "gen_to_train": distance_quantiles(gd[:, 0]),
        "test_to_train": distance_quantiles(td[:, 0]) if td is not None else None,
        "gen_relative": distance_quantiles(gen_rel),
        "test_relative": distance_quantiles(test_rel) if test_rel is not None else None,
        "n_rel_used": int(n_rel),
        "notes": notes,
    }
    summary["verdict"], summary["verdict_line"] = verdict(summary, settings)
    per_sample = {"nearest_distance": gd[:, 0], "relative_distance": gen_rel, "flagged": flagged,
                  "neighbour_indices": gi[:, :settings.k], "neighbour_distances": gd[:, :settings.k],
                  "test_nearest_distance": td[:, 0] if td is not None else None,
                  "test_relative_distance": test_rel}
    return {"summary": summary, "per_sample": per_sample}


def verdict(s: dict, settings: MemorizationSettings = MemorizationSettings()) -> tuple[str, str]:
    """(``copying`` | ``no evidence of copying`` | ``underfitting``, one line with the numbers).

    copying: C_T < -ct_significant, or more samples flagged than ``flag_excess`` times
    the calibration rate; underfitting: C_T > +ct_significant (and no excess of flags);
    otherwise no evidence of copying. Without TEST only the flags (fixed cut) speak.
    """
    ct, frac = s["ct"], s["flagged_fraction"]
    expected = settings.copy_quantile if s["n_test"] else 0.0
    excess = frac > max(settings.flag_excess * expected, 0.05)
    flags = f"{s['n_flagged']}/{s['n_gen']} samples flagged ({frac:.1%}; relative distance < {s['copy_threshold']:.3f})"
    auth = f"AuthPct {s['auth_pct']:.1f}"
    gq, tq = s["gen_to_train"], s["test_to_train"]
    med = f"median nearest-train distance gen {gq['q50']:.4g}" + (f" vs test {tq['q50']:.4g}" if tq else "")
    sig = settings.ct_significant
    if ct is not None:
        ct_txt = f"C_T = {ct:+.2f}"
    elif s["n_test"]:
        ct_txt = "C_T undefined (too few generated samples per cell: raise --n)"
    else:
        ct_txt = "C_T not computed (needs --test)"
    if (ct is not None and ct < -sig) or excess:
        label = "copying"
    elif ct is not None and ct > sig:
        label = "underfitting"
    else:
        label = "no evidence of copying"
    return label, f"{label}: {ct_txt}; {flags}; {auth}; {med}"
