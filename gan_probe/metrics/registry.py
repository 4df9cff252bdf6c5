"""The metric registry: every metric ``gan-probe score`` can compute, declared once.

A metric is one compute function and one :func:`register_metric` call. The declaration says
everything the rest of the program needs, so adding a metric edits nothing else:

- ``name`` (what ``--metrics`` takes) and ``help`` (listed in ``gan-probe score --help``);
- ``needs_ref``: whether it compares GEN against a reference source;
- ``consumes``: what it reads from each side, among ``statistics`` (``mu``, ``sigma``: always
  there, also from a ``.npz`` file), ``features`` (N x d) and ``logits`` (N x classes). A metric
  that needs a reference reads the same from both sides unless ``ref_consumes`` says otherwise.
  :func:`side_needs` derives from this which sides extract features or logits at all;
- ``compute(gen, ref, ctx) -> dict``: the JSON keys and values it adds to the result. ``gen`` and
  ``ref`` (``None`` without a reference) carry ``mu``, ``sigma``, ``features``, ``logits``, ``n``
  and ``source`` (:class:`gan_probe.metrics.extract.SourceFeatures`), whichever encoder produced
  them; ``ctx`` (:class:`MetricContext`) gives the options, the device and a list for warnings;
- ``rows``: how the printed table shows those keys (label, key, optional ``± std`` key, format);
- ``spaces``: the feature spaces (``score --features``) it is defined in (None: every space), and
  ``except_spaces`` those it is not (``fd`` is ``fid`` outside Inception space, so ``fd`` excludes
  ``inception`` and ``fid`` is Inception-only: a number is never named for a space it was not
  computed in); ``default``: part of ``score``'s default ``--metrics`` (True: in every space it
  applies to; a set of space names: only there);
- ``bootstrap``: whether ``--ci`` can resample it (metrics computed from features or statistics
  recomputed from them; not the Inception Score, which reads logits);
- ``higher_is_better``: the direction of its headline value (the key of its first row): False for
  distances (FID, KID, CMMD), True for the Inception Score, precision, density. ``train --eval-every``
  keeps ``best.pt`` by it (:meth:`Metric.headline`).

Compute functions stay thin: the formulas are numpy-only functions named for their data flow in
their own modules (``statistics_to_fid``, ``features_to_kid``, ``logits_to_inception_score``,
``features_to_precision_recall``, ...), imported lazily so that importing this registry (and
scoring two ``.npz`` files) never imports torch.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

CONSUMABLES = ("statistics", "features", "logits")
SIDES = ("gen", "ref")


@dataclass(frozen=True)
class MetricRow:
    """One line of the printed table: ``label``, the result key shown, an optional key shown as
    ``± std``, and the format spec of both (``.4f``)."""

    label: str
    key: str
    std_key: str | None = None
    fmt: str = ".4f"

    def value_text(self, result: dict) -> str | None:
        """The formatted value (and ``± std``), or None when the result lacks the key."""
        if result.get(self.key) is None:
            return None
        text = format(result[self.key], self.fmt)
        if self.std_key and result.get(self.std_key) is not None:
            text += " ± " + format(result[self.std_key], self.fmt)
        return text


@dataclass
class MetricContext:
    """What a compute function may use besides the two sides: the run's options
    (:class:`gan_probe.metrics.score.ScoreOptions`: seed, k, subsets, device...) and ``notes``,
    the result's warning list (append a line to warn the user)."""

    options: Any
    notes: list[str] = field(default_factory=list)
    _device: str | None = None

    @property
    def device(self) -> str:
        """The resolved ``options.device`` (``auto`` -> cuda / mps / cpu), resolved once, on first use."""
        if self._device is None:
            from gan_probe.device import resolve_device

            self._device = str(resolve_device(self.options.device))
        return self._device


Compute = Callable[[Any, Any, MetricContext], dict]


@dataclass(frozen=True)
class Metric:
    name: str
    compute: Compute
    help: str
    needs_ref: bool
    consumes: frozenset[str]
    ref_consumes: frozenset[str]
    rows: tuple[MetricRow, ...]
    default: bool | frozenset[str] = True  # part of `score`'s default --metrics (everywhere / in these spaces)
    spaces: frozenset[str] | None = None  # feature spaces it is defined in (None: every one)
    except_spaces: frozenset[str] = frozenset()
    bootstrap: bool = True  # --ci can resample it
    higher_is_better: bool = False  # the direction of the headline value (the first row's key)

    def headline(self) -> str:
        """The result key that stands for this metric (its first row's: ``fid``, ``is``, ``precision``)."""
        return self.rows[0].key if self.rows else self.name

    def needs(self, side: str) -> frozenset[str]:
        """What this metric reads from ``side`` (``gen`` or ``ref``)."""
        return self.consumes if side == "gen" else self.ref_consumes

    def applies_to(self, space: str) -> bool:
        """Whether this metric is defined in feature space ``space``."""
        return space not in self.except_spaces and (self.spaces is None or space in self.spaces)

    def is_default(self, space: str) -> bool:
        if not self.applies_to(space):
            return False
        return self.default if isinstance(self.default, bool) else space in self.default

    def spaces_text(self) -> str:
        if self.spaces is not None:
            return " / ".join(sorted(self.spaces))
        return "every space" + (f" but {', '.join(sorted(self.except_spaces))}" if self.except_spaces else "")


METRICS: dict[str, Metric] = {}  # name -> Metric, in registration order (the order of results and table rows)

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def register_metric(name: str, compute: Compute | None = None, *, help: str, needs_ref: bool,
                    consumes: Iterable[str], rows: Iterable[MetricRow], ref_consumes: Iterable[str] | None = None,
                    default: bool | Iterable[str] = True, spaces: Iterable[str] | None = None,
                    except_spaces: Iterable[str] = (), bootstrap: bool = True, higher_is_better: bool = False):
    """Register a metric (see the module doc). Call it with the compute function, or use it as a
    decorator: ``@register_metric("fid", help=..., needs_ref=True, consumes={"statistics"}, rows=[...])``.
    Returns the compute function. A name already registered is a programming error (ValueError)."""

    def add(fn: Compute) -> Compute:
        if not _NAME.match(name):
            raise ValueError(f"metric name {name!r}: use lower-case letters, digits, '-' or '_'")
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        gen_needs = frozenset(consumes)
        ref_needs = frozenset(ref_consumes if ref_consumes is not None else (gen_needs if needs_ref else ()))
        unknown = (gen_needs | ref_needs) - set(CONSUMABLES)
        if unknown:
            raise ValueError(f"metric {name!r} consumes {sorted(unknown)}; choose among {', '.join(CONSUMABLES)}")
        if ref_needs and not needs_ref:
            raise ValueError(f"metric {name!r} reads the reference side but does not declare needs_ref=True")
        dflt = default if isinstance(default, bool) else frozenset(default)
        METRICS[name] = Metric(name, fn, help, needs_ref, gen_needs, ref_needs, tuple(rows), dflt,
                               None if spaces is None else frozenset(spaces), frozenset(except_spaces), bootstrap,
                               higher_is_better)
        return fn

    return add if compute is None else add(compute)


def metric_names() -> list[str]:
    return list(METRICS)


def get_metric(name: str) -> Metric:
    """The registered metric ``name`` (KeyError if none: check names with :func:`metric_names`)."""
    return METRICS[name]


def default_metrics(space: str = "inception") -> list[str]:
    """The metrics ``gan-probe score --features SPACE`` computes when ``--metrics`` is not given."""
    return [m.name for m in METRICS.values() if m.is_default(space)]


def side_needs(metrics: Iterable[str], side: str) -> frozenset[str]:
    """What ``side`` (``gen`` or ``ref``) must provide for ``metrics``: a subset of :data:`CONSUMABLES`."""
    return frozenset().union(*(METRICS[m].needs(side) for m in metrics))


def metrics_help() -> str:
    """``--metrics``' help text: every registered metric with its help."""
    items = [(f"{m.name} ({m.help})" if m.help else m.name)
             + ("" if m.spaces is None and not m.except_spaces else f" [{m.spaces_text()}]") for m in METRICS.values()]
    return ("Comma list of " + ", ".join(items) + ". Default: the metrics marked default for the --features "
            "space (inception: " + ",".join(default_metrics("inception")) + ").")


def table_rows(result: dict) -> list[tuple[str, str]]:
    """(label, value text) for every registered row whose key ``result`` holds, in registry order;
    a bootstrap interval (``result["ci"][key]``) follows its value as ``[low, high]``."""
    out = []
    intervals = result.get("ci") or {}
    for m in METRICS.values():
        for row in m.rows:
            text = row.value_text(result)
            if text is not None:
                if (iv := intervals.get(row.key)) is not None:
                    text += f"  [{format(iv['low'], row.fmt)}, {format(iv['high'], row.fmt)}]"
                out.append((row.label, text))
    return out


def compute_metrics(gen, ref, metrics: Iterable[str], ctx: MetricContext) -> dict:
    """Every chosen metric's keys and values, computed in registry order (so the JSON keys come in
    the same order whatever the order of ``metrics``)."""
    chosen = set(metrics)
    scores: dict = {}
    for m in METRICS.values():
        if m.name in chosen:
            scores.update(m.compute(gen, ref if m.needs_ref else None, ctx))
    return scores


# ---------------------------------------------------------------- the built-in metrics

def _frechet(key: str, what: str):
    def compute(gen, ref, ctx: MetricContext) -> dict:
        from gan_probe.metrics.fid import SmallSampleWarning, statistics_to_fid, warn_if_few_samples

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)  # reported once, as a note
            for r in (gen, ref):
                if r.n is not None and (text := warn_if_few_samples(r.n, len(r.mu), what)):
                    ctx.notes.append(f"{r.source.spec}: {text}")
        return {key: statistics_to_fid(gen.mu, gen.sigma, ref.mu, ref.sigma)}

    return compute


register_metric("fid", _frechet("fid", "FID"), help="Fréchet Inception Distance", needs_ref=True,
                consumes={"statistics"}, rows=[MetricRow("FID", "fid")], spaces={"inception"})
register_metric("fd", _frechet("fd", "FD"), help="Fréchet distance in the --features space (FD-DINOv2 in dinov2)",
                needs_ref=True, consumes={"statistics"}, rows=[MetricRow("FD", "fd")], except_spaces={"inception"},
                default={"dinov2"})


@register_metric("is", help="Inception Score, needs no reference", needs_ref=False, consumes={"logits"},
                 rows=[MetricRow("Inception Score", "is", "is_std")], spaces={"inception"}, bootstrap=False,
                 higher_is_better=True)
def _inception_score(gen, ref, ctx: MetricContext) -> dict:
    from gan_probe.metrics.inception_score import logits_to_inception_score

    mean, std = logits_to_inception_score(gen.logits)
    return {"is": mean, "is_std": std}


def _kernel(key: str):
    def compute(gen, ref, ctx: MetricContext) -> dict:
        from gan_probe.metrics.kid import features_to_kid

        o = ctx.options
        mean, std = features_to_kid(ref.features, gen.features, o.kid_subsets, o.kid_subset_size, o.seed)
        m = min(o.kid_subset_size, len(ref.features), len(gen.features))
        if m == len(ref.features) == len(gen.features):
            ctx.notes.append(f"{key.upper()}: both sides have N = {m} <= the subset size {o.kid_subset_size}, so every "
                             f"subset is the whole set and its ± is 0; for an interval ask for ci")
        return {key: mean, f"{key}_std": std, f"{key}_subset_size": m}

    return compute


register_metric("kid", _kernel("kid"), help="Kernel Inception Distance", needs_ref=True, consumes={"features"},
                rows=[MetricRow("KID", "kid", "kid_std", fmt=".6f")], spaces={"inception"})
register_metric("kd", _kernel("kd"), help="kernel distance (KID's estimator) in the --features space",
                needs_ref=True, consumes={"features"}, rows=[MetricRow("KD", "kd", "kd_std", fmt=".6f")],
                except_spaces={"inception"}, default={"dinov2"})


def _neighbours(formula: str, k: str, keys: tuple[str, str]):
    """A k-NN pair of :mod:`gan_probe.metrics.prdc`: ``formula(ref, gen, options.<k>, device)`` -> ``keys``."""
    def compute(gen, ref, ctx: MetricContext) -> dict:
        from gan_probe.metrics import prdc

        pair = getattr(prdc, formula)(ref.features, gen.features, getattr(ctx.options, k), ctx.device)
        return dict(zip(keys, pair, strict=True))

    return compute


register_metric("pr", _neighbours("features_to_precision_recall", "pr_k", ("precision", "recall")),
                help="precision/recall, k=3", needs_ref=True, consumes={"features"},
                rows=[MetricRow("precision (k=3)", "precision"), MetricRow("recall (k=3)", "recall")],
                higher_is_better=True)
register_metric("dc", _neighbours("features_to_density_coverage", "dc_k", ("density", "coverage")),
                help="density/coverage, k=5", needs_ref=True, consumes={"features"},
                rows=[MetricRow("density (k=5)", "density"), MetricRow("coverage (k=5)", "coverage")],
                higher_is_better=True)


@register_metric("cmmd", help="CMMD: RBF-kernel MMD, sigma 10, x1000 (Jayasumana et al. 2024)", needs_ref=True,
                 consumes={"features"}, rows=[MetricRow("CMMD", "cmmd")], spaces={"clip"})
def _cmmd(gen, ref, ctx: MetricContext) -> dict:
    from gan_probe.metrics.cmmd import features_to_cmmd

    return {"cmmd": features_to_cmmd(ref.features, gen.features)}
