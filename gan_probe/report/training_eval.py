"""The report's "Scores during training": what ``train --eval-every`` logged (``"kind": "eval"`` lines
of log.jsonl, :mod:`gan_probe.train_eval`), plotted against the step: each metric's headline value,
and D's linear-probe accuracy next to a random D's (the paper's representation claim as it forms)."""

from __future__ import annotations

from html import escape

from gan_probe.report.sections import fmt, number
from gan_probe.report.svg import line_plot

EVAL_KIND = "eval"  # gan_probe.train_eval.EVAL_KIND (not imported: the report must not import torch)


def eval_records(log: list[dict]) -> list[dict]:
    """The evaluation lines of a log, in step order (training lines have no ``kind``)."""
    rows = [r for r in log if r.get("kind") == EVAL_KIND and number(r.get("step")) is not None]
    return sorted(rows, key=lambda r: r["step"])


def _headlines(rows: list[dict]) -> list[str]:
    """The score keys to plot: each chosen metric's headline (the registry's; falls back to the name)."""
    try:
        from gan_probe.metrics.registry import get_metric

        def headline(m: str) -> str:
            return get_metric(m).headline()
    except ImportError:  # pragma: no cover
        def headline(m: str) -> str:
            return m
    keys: list[str] = []
    for r in rows:
        for m in r.get("metrics") or []:
            try:
                k = headline(m)
            except KeyError:  # a metric this version does not know
                k = m
            if k not in keys:
                keys.append(k)
    return keys


def eval_section(log: list[dict]) -> str:
    """The HTML of the evaluation plots, or "" when the log holds no evaluation."""
    rows = eval_records(log)
    if not rows:
        return ""
    last = rows[-1]
    parts = ["<h3>Scores during training</h3>",
             f'<p class="blurb">Every {escape(_every(rows))} steps <code>gan-probe train --eval-every</code> scored '
             f'the same {escape(str(last.get("n")))} samples of G against <code>{escape(str(last.get("ref")))}</code> '
             f'({escape(str(last.get("features")))} features).</p>']
    best = last.get("best") or {}
    if number(best.get("value")) is not None:
        direction = "higher" if best.get("higher_is_better") else "lower"
        parts.append(f'<p class="verdict">Best ({escape(direction)} is better): <b>{escape(str(best.get("key")))} '
                     f'{fmt(best["value"])}</b> at step {escape(str(best.get("step")))}, kept as '
                     f'<code>checkpoints/best.pt</code>.</p>')
    plots = []
    for key in _headlines(rows):
        pts = [(float(r["step"]), number((r.get("scores") or {}).get(key))) for r in rows]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            plots.append(line_plot({key: ([p[0] for p in pts], [p[1] for p in pts])}, title=f"{key} over training",
                                   xlabel="step"))
    probes = [(float(r["step"]), r["probe"]) for r in rows if isinstance(r.get("probe"), dict)]
    if probes:
        trained = [(x, number(p.get("disc"))) for x, p in probes]
        random = [(x, number(p.get("random_disc"))) for x, p in probes]
        series = {name: ([x for x, y in pts if y is not None], [y for x, y in pts if y is not None])
                  for name, pts in (("trained D", trained), ("random D", random))}
        lpc = probes[-1][1].get("labels_per_class")
        plots.append(line_plot({k: v for k, v in series.items() if v[0]},
                               title=f"Linear probe on D's features ({lpc} labels/class)", xlabel="step",
                               ylabel="test accuracy", y_range=(0.0, 1.0)))
        p = probes[-1][1]
        parts.append(f'<p class="blurb">Linear probe at step {int(probes[-1][0])}: trained D '
                     f'{fmt(p.get("disc"), 3)}, random D {fmt(p.get("random_disc"), 3)} '
                     f'(L2-SVM on every conv layer max-pooled to 4x4, {escape(str(lpc))} labels per class, '
                     f'{escape(str(p.get("repeats")))} draws, on {escape(str(p.get("test")))}).</p>')
    parts.append('<div class="plots">' + "".join(plots) + "</div>")
    return "".join(parts)


def _every(rows: list[dict]) -> str:
    steps = [int(r["step"]) for r in rows]
    return str(steps[0]) if len(steps) < 2 else str(min(b - a for a, b in zip(steps, steps[1:])) or steps[0])
