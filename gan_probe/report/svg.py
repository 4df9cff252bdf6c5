"""A small inline-SVG line plot (no matplotlib, no JavaScript): training curves for the report."""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return f"{v / 1000:g}k"
    return f"{v:.4g}"


def downsample(xs: list[float], ys: list[float], max_points: int = 600) -> tuple[list[float], list[float]]:
    """Every k-th point (keeping the last) so long runs stay small."""
    if len(xs) <= max_points:
        return xs, ys
    k = math.ceil(len(xs) / max_points)
    idx = list(range(0, len(xs), k))
    if idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def line_plot(series: dict[str, tuple[list[float], list[float]]], *, title: str, xlabel: str, ylabel: str = "",
              y_range: tuple[float, float] | None = None, width: int = 500, height: int = 300) -> str:
    """An SVG string: one polyline per series, axes with round ticks, a legend."""
    left, right, top, bottom = 58, 14, 50, 44
    pw, ph = width - left - right, height - top - bottom
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys)
           if math.isfinite(x) and math.isfinite(y)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left + pw / 2}" y="18" text-anchor="middle" class="plot-title">{escape(title)}</text>']
    if not pts:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = y_range if y_range else (min(p[1] for p in pts), max(p[1] for p in pts))
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.04 * (y1 - y0)
    if not y_range:
        y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (min(max(y, y0), y1) - y0) / (y1 - y0)) * ph

    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot-bg"/>')
    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            y = sy(t)
            parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                         f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{fmt_tick(t)}</text>')
    for t in nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            x = sx(t)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" class="grid"/>'
                         f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle" class="tick">'
                         f'{fmt_tick(t)}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle" class="axis-label">'
                 f'{escape(xlabel)}</text>')
    if ylabel:
        parts.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle" '
                     f'class="axis-label">{escape(ylabel)}</text>')
    lx, ly = left, 38
    for i, (name, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        xs, ys = downsample(list(xs), list(ys))
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys)
                          if math.isfinite(x) and math.isfinite(y))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.6" '
                     f'stroke-linejoin="round"><title>{escape(name)}</title></polyline>')
        item_w = 30 + 6.2 * len(name)
        if lx + item_w > left + pw and lx > left:
            lx, ly = left, ly + 15
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" '
                     f'stroke-width="3"/><text x="{lx + 23}" y="{ly}" class="legend">{escape(name)}</text>')
        lx += item_w
    parts.append("</svg>")
    return "".join(parts)
