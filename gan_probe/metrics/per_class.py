"""Per-class scores of a conditional generator ("intra-FID"): ``score --per-class``.

Each class k of GEN (``n`` seeded samples with every label set to k, a source of its own, cached by
the model, k, n and seed) is scored against the images of class k of a labelled reference, with the
same registry metrics as :func:`gan_probe.metrics.score.compute_scores`; the result holds each
class's values and their mean over classes (the mean of the per-class FIDs is the intra-FID of
Miyato & Koyama 2018).

The reference is extracted in one pass and its features split by label: a dataset with labels
(``digits:test``, ``cifar10:test``: the labels its loader gives, in its order), or a folder with
one sub-folder per class (sorted by name, numerically when every name is a number; class k of
GEN is the k-th sub-folder).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
import numpy as np

from gan_probe.errors import GanProbeError

# values of a class that are not averaged (counts and spreads, not scores)
NOT_AVERAGED = ("_std", "_subset_size")


def reference_labels(ref: str, source, opts) -> tuple[np.ndarray, list[str]]:
    """(the label of every image of ``source``, in the order it yields them; class names) of a
    labelled reference, or a one-line error naming why ``ref`` has no labels."""
    if source.kind == "folder":
        return _folder_labels(ref, source)
    if source.kind == "dataset":
        return _dataset_labels(source)
    raise GanProbeError(f"ref {ref} has no class labels ({source.kind}): per_class needs a labelled dataset "
                        f"(digits:test, cifar10:test) or a folder with one sub-folder per class", param="ref")


def _folder_labels(ref: str, source) -> tuple[np.ndarray, list[str]]:
    root = Path(source.path)
    rel = [f.relative_to(root).parts for f in source.files]
    loose = [os.path.join(*p) for p in rel if len(p) == 1]
    names = sorted({p[0] for p in rel if len(p) > 1})
    if not names:
        raise GanProbeError(f"ref {ref} has no class labels: per_class needs one sub-folder of images per class "
                            f"(found images only at its top level)", param="ref")
    if loose:
        raise GanProbeError(f"ref {ref}: per_class needs every image inside a class sub-folder; {len(loose)} "
                            f"lie at its top level (e.g. {loose[0]})", param="ref")
    if all(n.isdigit() for n in names):
        names = sorted(names, key=int)
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[p[0]] for p in rel], dtype=np.int64), names


def _dataset_labels(source) -> tuple[np.ndarray, list[str]]:
    from gan_probe.data import load_dataset

    ds = load_dataset(source.spec, root=source.data_root, download=source.download)
    for attr in ("labels", "targets"):
        got = getattr(ds, attr, None)
        if got is not None and len(got) == len(ds):
            labels = np.asarray(got.numpy() if hasattr(got, "numpy") else got, dtype=np.int64)
            break
    else:
        labels = np.array([int(ds[i][1]) for i in range(len(ds))], dtype=np.int64)
    classes = getattr(ds, "classes", None)
    count = int(labels.max()) + 1 if len(labels) else 0
    names = [str(c) for c in classes] if classes is not None and len(classes) == count else [str(k) for k in
                                                                                              range(count)]
    return labels, names


def conditional_generator(gen):
    """(the generator's spec, its class count), or a one-line error: GEN must be a conditional model."""
    from gan_probe.models.sources import as_spec, model_info, names_model

    if not names_model(gen):
        raise GanProbeError(f"per_class scores a conditional generator, and GEN {gen} is not a model (a checkpoint, "
                            f"TorchScript file, model card or pickle)", param="per_class")
    spec = as_spec(gen)
    if spec.class_index is not None:
        raise GanProbeError("class_index and per_class do not go together: per_class scores every class",
                            param="class_index")
    classes = int(getattr(model_info(spec, "generator"), "num_classes", 0) or 0)
    if classes < 1:
        raise GanProbeError(f"per_class needs a conditional generator, and GEN {gen} is unconditional "
                            f"(num_classes 0)", param="per_class")
    return spec, classes


def compute_per_class(gen, ref, metrics: list[str], opts) -> dict:
    """The chosen ``metrics`` of every class of ``gen`` against the same class of ``ref``, and their
    mean (``per_class``, ``per_class_mean``); the other keys as :func:`compute_scores`'s."""
    from gan_probe.metrics.registry import MetricContext, compute_metrics, side_needs
    from gan_probe.metrics.score import _encode_sides, _extract_sides, _side_summary
    from gan_probe.metrics.sources import open_source
    from gan_probe.models.cards import ModelSpec

    if ref is None:
        raise GanProbeError("ref is required by per_class (each class against the same class of a labelled "
                            "reference)", param="ref")
    if opts.ci is not None or opts.fd_inf:
        raise GanProbeError("per_class is not combined with ci or fd_inf (give one or the other)", param="per_class")
    spec, classes = conditional_generator(gen)
    src_kw = dict(n=opts.n, seed=opts.seed, skip_bad=False, data_root=opts.data_root, download=opts.data_download)
    ref_src = open_source(ref, **src_kw)
    labels, names = reference_labels(str(ref), ref_src, opts)
    if len(names) != classes:
        raise GanProbeError(f"GEN has {classes} classes but ref {ref} has {len(names)} ({', '.join(names[:12])}"
                            f"{' ...' if len(names) > 12 else ''}): per_class pairs class k of each", param="ref")
    counts = np.bincount(labels, minlength=classes)
    if (thin := [names[k] for k in range(classes) if counts[k] < 2]):
        raise GanProbeError(f"ref {ref}: class(es) {', '.join(thin)} hold fewer than 2 images", param="ref")
    gen_srcs = [open_source(ModelSpec(spec.path, class_index=k, psi=spec.psi, trust_pickle=spec.trust_pickle),
                            **src_kw) for k in range(classes)]
    gen_needs = side_needs(metrics, "gen")
    ref_needs = side_needs(metrics, "ref")
    if opts.features == "inception":
        sides = [(s, "features" in gen_needs, "logits" in gen_needs) for s in gen_srcs]
        sides.append((ref_src, True, "logits" in ref_needs))
        results, protocol = _extract_sides(sides, opts)
    else:
        results, protocol = _encode_sides([*gen_srcs, ref_src], opts)
    from gan_probe.distributed import is_main_process

    if not is_main_process():  # torchrun: the other ranks shared the feature passes; rank 0 scores
        return None
    ref_res, gen_res = results[-1], results[:-1]
    if len(ref_res.features) != len(labels):
        raise GanProbeError(f"ref {ref}: {len(ref_res.features)} images were read but {len(labels)} are labelled")
    notes = [note for r in results for note in r.notes]
    rows = []
    for k in range(classes):
        rows.append({"class": k, "name": names[k], "n_gen": gen_res[k].n, "n_ref": int(counts[k]),
                     **compute_metrics(gen_res[k], _class_side(ref_res, labels == k), metrics,
                                       MetricContext(opts, notes))})
    mean = {key: float(np.mean([r[key] for r in rows])) for key, v in rows[0].items()
            if isinstance(v, float) and not key.endswith(NOT_AVERAGED)}
    return {"metrics": metrics, "gen": {**_side_summary(gen_res[0]), "source": str(gen), "n_per_class": opts.n},
            "ref": _side_summary(ref_res), "protocol": protocol, "warnings": notes, "classes": names,
            "per_class": rows, "per_class_mean": mean}


def _class_side(res, mask: np.ndarray):
    """``res`` restricted to the images where ``mask`` holds: its statistics recomputed from the features."""
    from gan_probe.metrics.fid import features_to_statistics

    feats = res.features[mask]
    mu, sigma = features_to_statistics(feats)
    logits = res.logits[mask] if res.logits is not None else None
    return replace(res, mu=mu, sigma=sigma, n=int(mask.sum()), features=feats, logits=logits, notes=[])


def per_class_table(result: dict) -> tuple[list[str], list[list[str]]]:
    """(column labels, rows of text) for the printed table: one row per class, then the mean."""
    from gan_probe.metrics.registry import table_rows

    rows = result["per_class"]
    labels = [label for label, _ in table_rows(rows[0])]
    body = [[f"{r['class']} ({r['name']})" if r["name"] != str(r["class"]) else str(r["class"]),
             str(r["n_gen"]), str(r["n_ref"]), *[t for _, t in table_rows(r)]] for r in rows]
    body.append(["mean", "", "", *[t for _, t in table_rows(result["per_class_mean"])]])
    return ["class", "N gen", "N ref", *labels], body
