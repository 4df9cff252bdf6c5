"""The analyses a report knows: which command makes each, which paper figure it answers, and the
few numbers of its summary a reader needs (its headline; everything else stays in summary.json)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gan_probe.runs import results_of

@dataclass(frozen=True)
class Datasets:
    """The run's training data as dataset arguments for the analysis commands."""

    train: str
    test: str  # "" when the dataset has no test split


@dataclass(frozen=True)
class Headline:
    """The numbers of one analysis a reader needs: ``rows`` of (what, value, what it means and what is
    good), and ``line``, one sentence for the summary at the top of the page."""

    rows: tuple[tuple[str, str, str], ...]
    line: str


@dataclass(frozen=True)
class Analysis:
    name: str  # the command and the folder RUN_DIR/analysis/<name>
    title: str
    figure: str  # which figure / table of the paper it corresponds to
    blurb: str
    args: Callable[[str, Datasets], list[str]]  # command-line args after `gan-probe`
    offline: bool = True  # --run-missing may run it (needs no download)
    headline: Callable[[dict], Headline] | None = None  # summary.json -> its few numbers (None: none)
    # `report --run-missing` on the CPU: the command with smaller samples, so `make demo` stays a few minutes on
    # 2 cores (docs/report.md), and why, in one line (printed, and shown in the section). None: ``args``.
    # Elsewhere, and whenever a command is run by hand, its own defaults hold (score: FID-10k).
    cpu_args: Callable[[str, Datasets], list[str]] | None = None
    cpu_note: str = ""


# ---------------------------------------------------------------- headlines: one function per analysis
# Each reads a summary.json (through runs.results_of) and tolerates a missing key: an older summary,
# or one written before a key was added, shows what it has.
def number(v) -> float | None:
    """``v`` as a finite float, or None (booleans, strings, NaN and missing values are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def fmt(v, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``—`` when it is not a number)."""
    x = number(v)
    return "—" if x is None else f"{x:.{digits}g}"


def pct(v, std=None) -> str:
    """A fraction as a percentage with one decimal (and ``± std`` in points when given)."""
    x = number(v)
    if x is None:
        return "—"
    s = number(std)
    return f"{100 * x:.1f}%" + (f" ± {100 * s:.1f}" if s is not None else "")


def _get(d, *keys):
    """d[k1][k2]... or None when a level is missing or not an object."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def walk_headline(summary: dict) -> Headline:
    r = results_of(summary)
    rows, line = [], []
    for space, d in (r.get("ppl") or {}).items():
        if number(_get(d, "value")) is not None:
            rows.append((f"PPL ({space})", fmt(d["value"]),
                         f"mean squared {space}-feature change per unit step of z (eps {fmt(d.get('epsilon'), 2)}, "
                         f"n={d.get('n', '?')}); lower = smoother. Offline variant: compare runs of the same setup, "
                         f"not published (LPIPS) PPL"))
            line.append(f"PPL ({space}) {fmt(d['value'])}")
    rule = r.get("sharp_rule") if isinstance(r.get("sharp_rule"), dict) else {}
    for space, d in (r.get("smoothness") or {}).items():
        if isinstance(d, dict) and isinstance(d.get("sharp_paths"), list) and isinstance(d.get("paths"), list):
            k, n = len(d["sharp_paths"]), len(d["paths"])
            rows.append((f"sharp transitions ({space})", f"{k} of {n} paths",
                         f"paths whose largest step stays abrupt when zoomed into {rule.get('levels', 2)} times "
                         f"({rule.get('refine', 8)} sub-steps each); 0 is good: jumps suggest memorised images"))
            line.append(f"{k}/{n} sharp ({space})")
    return Headline(tuple(rows), "; ".join(line) or "no PPL or smoothness in summary.json")


def memorization_headline(summary: dict) -> Headline:
    r = results_of(summary)
    verdict = r.get("verdict") if isinstance(r.get("verdict"), str) else "—"
    gen_med, test_med = _get(r, "gen_to_train", "q50"), _get(r, "test_to_train", "q50")
    rows = (
        ("verdict", verdict, "copying / no evidence of copying / underfitting, from C_T and the flags "
                             "(docs/memorization.md)"),
        ("C_T", fmt(r.get("ct"), 3), "Meehan et al.'s test: about 0 = generated samples sit as close to the "
                                     "training set as held-out images; below -3 = copying; above +3 = farther "
                                     "than held-out images (underfitting)"),
        ("AuthPct", fmt(r.get("auth_pct"), 3), "% of samples farther from their nearest training image than that "
                                               "image's own nearest neighbour; higher = more authentic"),
        ("flagged", f"{pct(r.get('flagged_fraction'))} ({r.get('n_flagged', '?')} of {r.get('n_gen', '?')})",
         "samples whose relative nearest-train distance is below the held-out images' low quantile; about the "
         "calibration rate is good, far above = copies"),
        ("median distance to train: gen vs test", f"{fmt(gen_med)} vs {fmt(test_med)}",
         "generated samples should be about as far from the training set as held-out images; much closer = "
         "copying, much farther = underfitting"),
    )
    return Headline(rows, f"{verdict}; C_T {fmt(r.get('ct'), 3)}; AuthPct {fmt(r.get('auth_pct'), 3)}; "
                          f"{pct(r.get('flagged_fraction'))} flagged")


# classify: keys another analysis version may add (a fair random-D baseline, pixels, a paired comparison)
CLASSIFY_BASELINE_KEYS = ("baselines", "baseline")
CLASSIFY_PAIRED_KEYS = ("paired", "comparison", "comparisons", "paired_difference")


def classify_headline(summary: dict) -> Headline:
    r = results_of(summary)
    quantity = r.get("report") if r.get("report") in ("accuracy", "error") else "accuracy"
    lpc = r.get("labels_per_class")
    labels = "all labels" if lpc == 0 else f"{lpc} labels per class"

    def score(d) -> str:
        return pct(_get(d, quantity, "mean"), _get(d, quantity, "std"))

    rows = [(f"{r.get('features', 'features')} ({r.get('feature_dim', '?')}-d) + L2-SVM, {quantity}", score(r),
             f"test {quantity} on {r.get('dataset', '?')}, {labels}, mean ± std over {r.get('repeats', '?')} label "
             f"draws; {'higher' if quantity == 'accuracy' else 'lower'} is better")]
    for key in CLASSIFY_BASELINE_KEYS:
        base = r.get(key)
        items = base.items() if isinstance(base, dict) else ()
        for name, d in items:
            if isinstance(d, dict) and number(_get(d, quantity, "mean")) is not None:
                rows.append((f"{name} + L2-SVM, {quantity}", score(d),
                             "baseline on the same label draws: trained D should beat it by more than the spread"))
    if len(rows) == 1:
        rows.append(("baselines", "—", "not in this summary: compare with `--features random-disc` and "
                                       "`--features pixels` on the same dataset"))
    paired = r.get("paired")
    if isinstance(paired, dict) and all(isinstance(p, dict) and "difference" in p for p in paired.values()):
        for name, p in paired.items():  # gan_probe.analysis.classify.paired_comparison's form
            diff = p["difference"]
            rows.append((f"{r.get('features', 'features')} minus {name}",
                         f"{100 * diff['mean']:+.2f} ± {100 * diff['std']:.2f} points",
                         f"paired over the same {p.get('draws', '?')} label draws: {p.get('favour_features', '?')} "
                         f"favour {r.get('features', 'features')}, {p.get('favour_baseline', '?')} {name}"))
        if isinstance(r.get("verdict"), dict) and r["verdict"].get("text"):
            rows.append(("verdict", str(r["verdict"]["text"]), "a gain counts only when it exceeds the draws' spread"))
    else:
        for key in CLASSIFY_PAIRED_KEYS:
            flat = [(k, v) for k, v in _flat(r.get(key), key) if number(v) is not None or isinstance(v, str)]
            for k, v in flat[:6]:
                rows.append((k, fmt(v) if number(v) is not None else str(v), "paired comparison over identical draws"))
    paper = r.get("paper")
    if isinstance(paper, dict):
        value = pct(paper.get("accuracy"), paper.get("std")) if "accuracy" in paper else pct(paper.get("error"))
        rows.append(("the paper", value, str(paper.get("source", ""))))
    line = f"{r.get('features', '?')} features: {quantity} {score(r)} ({labels})"
    return Headline(tuple(rows[:15]), line)


def _flat(obj, prefix: str) -> list[tuple[str, object]]:
    if isinstance(obj, dict):
        return [kv for k, v in obj.items() for kv in _flat(v, f"{prefix}.{k}")]
    return [(prefix, obj)] if obj is not None and not isinstance(obj, list) else []


def filters_headline(summary: dict) -> Headline:
    r = results_of(summary)
    trained, random = _get(r, "top_k_label_purity", "trained"), _get(r, "top_k_label_purity", "random")
    rows = (
        ("what to look at", "the figure",
         "trained D (right) vs random D (left) in guided_backprop.png: trained features should pick parts of "
         "objects (strokes, a digit class), random ones only blobs of ink; top_images.png: do a feature's "
         "top images share a class?"),
        ("top-k label purity: trained vs random", f"{fmt(trained, 2)} vs {fmt(random, 2)}",
         "mean share of a feature's top images with its most common label; higher for trained D is the "
         "paper's effect, but on centred digits position alone predicts the class (docs/report.md)"),
    )
    return Headline(rows, f"top-k label purity trained {fmt(trained, 2)} vs random {fmt(random, 2)}; "
                          f"read the figure")


def score_headline(summary: dict) -> Headline:
    from gan_probe.metrics.registry import table_rows

    r = results_of(summary)
    gen_n, ref_n = _get(r, "gen", "n"), _get(r, "ref", "n")
    protocol = r.get("protocol") if isinstance(r.get("protocol"), dict) else {}
    what = (f"N = {gen_n} generated vs {ref_n} reference images; {protocol.get('extractor', '?')}, "
            f"{protocol.get('dims', '?')}-d features")
    meaning = {"FID": "lower is better; 0 = same statistics. Biased by N: compare only at the same N",
               "KID": "lower is better; unbiased, about 0 for the same distribution",
               "Inception Score": "higher is better; meaningful for ImageNet-like images only",
               "precision": "share of samples inside the real manifold (fidelity); higher is better",
               "recall": "share of real images inside the samples' manifold (diversity); higher is better",
               "density": "fidelity, about 1 for real-vs-real; higher is better",
               "coverage": "diversity, about 1 for real-vs-real; higher is better"}
    values = table_rows(r)
    if isinstance(r.get("per_class_mean"), dict):  # score --per-class: the mean over classes (intra-FID)
        k = len(r.get("per_class") or [])
        values = [(f"{label}, mean of {k} classes", text) for label, text in table_rows(r["per_class_mean"])]
        gen_n = f"{_get(r, 'gen', 'n_per_class')} per class"
        what = f"each class of GEN against the same class of REF; {what}"
    rows = [(label, text, next((m for k, m in meaning.items() if label.startswith(k)), ""))
            for label, text in values]
    rows.append(("protocol", "", what))
    line = "; ".join(f"{label} {text}" for label, text in values[:3]) or "no scores in summary.json"
    return Headline(tuple(rows), f"{line} (N = {gen_n})")


def arithmetic_headline(summary: dict) -> Headline:
    r = results_of(summary)
    has = [k for k in ("sheet", "arithmetic") if isinstance(r.get(k), dict)]
    line = "wrote " + (" and ".join(has) if has else "nothing")
    rows = (("figures", line, "sheet: numbered samples; arithmetic: the a - b + c figure (needs --a, --b, --c)"),
            ("what to look at", "the figure",
             "the numbered sheet gives sample indices; `gan-probe arithmetic RUN --a I,J --b K --c L` then decodes "
             "mean(a) - mean(b) + mean(c) in z beside the same sum in pixels: z should give a clean image, pixels "
             "a blend"),)
    return Headline(rows, line)


def _memorization_args(run: str, ds: Datasets) -> list[str]:
    return ["memorization", run, "--train", ds.train] + (["--test", ds.test] if ds.test else [])


CPU_SCORE_N = 500  # generated samples `report --run-missing` scores on the CPU

ANALYSES: tuple[Analysis, ...] = (
    Analysis("score", "Sample quality: FID, IS, KID", "no figure in the paper (section 6 discusses quality by eye); "
             "published DCGAN FIDs for reference: CIFAR-10 49.03 (StudioGAN), CelebA-64 12.5 (TTUR)",
             "Fréchet Inception distance, Inception score and kernel Inception distance of the generator's samples "
             "against the training data.",
             lambda run, ds: ["score", run, "--ref", ds.train], headline=score_headline,
             cpu_args=lambda run, ds: ["score", run, "--ref", ds.test or ds.train, "--n", str(CPU_SCORE_N)],
             cpu_note=f"reduced on the CPU: {CPU_SCORE_N} generated samples against the held-out split (the "
                      f"training split when there is none) instead of 10,000 against the training data, to keep "
                      f"Inception's pass to minutes; FID is biased upwards at small N, so compare only at the same "
                      f"N. The full protocol: gan-probe score RUN --ref TRAIN --n 10000"),
    Analysis("memorization", "Memorization: nearest training neighbours",
             "beyond the paper (section 6 says no nearest-neighbour search was done)",
             "Each generated sample beside its nearest training images; distance statistics against held-out data.",
             _memorization_args, headline=memorization_headline),
    Analysis("walk", "Walking in the latent space", "Fig. 4",
             "Interpolations between random points of Z. Smooth transitions suggest the model learned relevant "
             "representations; sharp jumps would suggest memorization.",
             lambda run, ds: ["walk", run, "--gif"], headline=walk_headline,
             cpu_args=lambda run, ds: ["walk", run, "--gif", "--features", "pixels,disc"],
             cpu_note="reduced on the CPU: smoothness and path length in pixel and D features only, not "
                      "Inception's (about 2,200 Inception passes); all three: gan-probe walk RUN --gif"),
    Analysis("arithmetic", "Vector arithmetic on z", "Figs. 7 and 8",
             "Averaged exemplar z vectors combined as a - b + c and decoded; the same arithmetic in pixel space for "
             "comparison.",
             lambda run, ds: ["arithmetic", run, "--sheet"], headline=arithmetic_headline),
    Analysis("filters", "What the discriminator's features respond to", "Fig. 5",
             "Guided backpropagation of the maximal responses of features of D's last conv layer on the images "
             "that excite them most, random-init D beside the trained D; D's first-layer filters; top-activating "
             "images.",
             lambda run, ds: ["filters", run], headline=filters_headline),
    Analysis("classify", "Discriminator features + linear L2-SVM", "Tables 1 and 2",
             "The paper's representation experiment: D's conv layers max-pooled to 4x4, concatenated, a linear "
             "L2-SVM on top.",
             lambda run, ds: ["classify", run, "--features", "disc", "--dataset", ds.train.split(":")[0]],
             headline=classify_headline),
)

# The paper's numbers for the classification section.
PAPER_CLASSIFICATION = (
    ("CIFAR-10 (Table 1)", "accuracy, all labels", "82.8%",
     "D trained on Imagenet-1k (not CIFAR-10); 28,672-d features; L2-SVM"),
    ("CIFAR-10 (Table 1)", "accuracy, 400 labels per class", "73.8% (±0.4)", "same features"),
    ("SVHN (Table 2)", "test error, 1000 labels", "22.48%", "D trained on SVHN; supervised CNN of the same "
                                                              "architecture: 28.87%"),
)


def run_datasets(dataset: str) -> Datasets:
    """Train/test dataset arguments for a run trained on ``dataset`` (``digits``, ``cifar10:train``, a folder)."""
    from gan_probe.data import DATASETS

    if not dataset:
        return Datasets("digits:train", "digits:test")
    name, _, _split = dataset.partition(":")
    info = DATASETS.get(name.lower())
    if info is None:  # an image folder
        return Datasets(dataset, "")
    test = f"{info.name}:test" if "test" in info.splits else ""
    return Datasets(f"{info.name}:{_split or info.default_split}", test)


def inception_weights_path() -> Path | None:
    """pytorch-fid's Inception weights, where `gan-probe score` would find them (None if absent)."""
    from gan_probe.errors import GanProbeError
    from gan_probe.features.inception import find_inception_weights

    try:
        return find_inception_weights()
    except GanProbeError:
        return None


def inception_note() -> str:
    from gan_probe.features.inception import WEIGHTS_FILENAME as INCEPTION_WEIGHTS, WEIGHTS_URL as INCEPTION_URL
    from gan_probe.features.inception import hub_weights_path

    where = hub_weights_path().parent
    return (f"FID, IS and KID need pytorch-fid's Inception weights ({INCEPTION_WEIGHTS}, about 95 MB), "
            f"which gan-probe never downloads behind your back. On a machine with network access, download "
            f"{INCEPTION_URL} and put the file in {where} (torch hub's cache; set $TORCH_HOME to move it), "
            f"then run the command below.")
