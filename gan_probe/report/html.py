"""HTML pieces of the report: embedded images, tables, the page shell (inline CSS, no scripts)."""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path

MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
        ".webp": "image/webp", ".svg": "image/svg+xml"}

CSS = """
:root { --ink: #1d232b; --muted: #5b6673; --line: #dde2e8; --bg: #f6f7f9; --card: #fff; --accent: #2f5d8a; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 28px 60px; }
header.top h1 { margin: 0 0 4px; font-size: 26px; }
header.top p { margin: 0; color: var(--muted); }
h2 { font-size: 20px; margin: 0 0 2px; }
h3 { font-size: 15px; margin: 18px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px;
  margin: 18px 0; }
.fig-ref { color: var(--accent); font-weight: 600; font-size: 13px; margin: 0 0 6px; }
.blurb { color: var(--muted); margin: 4px 0 12px; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 10px;
  vertical-align: middle; margin-left: 8px; }
.badge.ok { background: #e3f3e6; color: #1f6b33; } .badge.missing { background: #fdecea; color: #a23a2f; }
nav.toc { columns: 2; font-size: 14px; margin: 14px 0 0; }
nav.toc a { color: var(--accent); text-decoration: none; }
.figs { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; }
.figs.samples { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); }
.figs.samples img { width: 100%; }
figure img { display: block; image-rendering: pixelated; border: 1px solid var(--line); max-width: 100%;
  height: auto; background: #fff; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
table { border-collapse: collapse; font-size: 13.5px; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; }
table.kv td:first-child { color: var(--muted); white-space: nowrap; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre.cmd, code.cmd { background: #1f2630; color: #e8edf2; padding: 6px 10px; border-radius: 5px; display: block;
  white-space: pre-wrap; word-break: break-all; }
details { margin-top: 8px; } summary { cursor: pointer; color: var(--accent); }
details pre { background: #f4f6f8; padding: 10px; overflow-x: auto; max-height: 420px; }
.note { background: #fff8e5; border-left: 4px solid #e0b23c; padding: 8px 12px; margin: 8px 0; font-size: 14px; }
.error { background: #fdecea; border-left: 4px solid #c0392b; padding: 6px 12px; margin: 8px 0; font-size: 13.5px; }
.plots { display: flex; flex-wrap: wrap; gap: 14px; }
svg.plot { background: #fff; max-width: 100%; height: auto; }
svg.plot .plot-bg { fill: #fbfcfd; stroke: #c9d0d8; } svg.plot .grid { stroke: #e6eaee; }
svg.plot text { font-size: 11px; fill: #444; } svg.plot .plot-title { font-size: 13px; font-weight: 600; fill: #222; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 8px; margin: 10px 0; font-size: 13px; }
.facts span { background: #f0f3f6; border-radius: 4px; padding: 2px 8px; }
.facts b { color: var(--muted); font-weight: 500; margin-right: 4px; }
table.headline td:first-child { white-space: nowrap; }
table.headline td.meaning { color: var(--muted); font-size: 13px; }
table.overview td:first-child { white-space: nowrap; }
.verdict { font-size: 15px; margin: 8px 0; } .verdict b { color: var(--accent); }
footer { color: var(--muted); font-size: 12.5px; margin-top: 26px; }
"""


def data_uri(path: Path) -> str:
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def image_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - a broken image is shown as a note, never fatal
        return None


def figure(path: Path, caption: str, max_width: int = 520) -> str:
    """An embedded image; small images are scaled up by an integer factor (pixelated)."""
    size = image_size(path)
    if size is None:
        return f'<div class="error">cannot read image {escape(path.name)}</div>'
    w, h = size
    scale = max(1, min(4, max_width // max(w, 1)))
    return (f'<figure style="max-width: {w * scale}px"><img src="{data_uri(path)}" width="{w * scale}" '
            f'height="{h * scale}" '
            f'alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>')


def fmt_value(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.4g}"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.1f}"
    if isinstance(v, int):
        return str(v)
    if v is None:
        return "—"
    if isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
        shown = ", ".join(fmt_value(x) for x in v[:12])
        return f"[{shown}{', …' if len(v) > 12 else ''}]"
    return str(v)


def flatten(obj, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts/lists -> (dotted key, scalar or list-of-scalars) rows."""
    rows: list[tuple[str, object]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            rows += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list) and any(isinstance(x, (dict, list)) for x in obj):
        for i, v in enumerate(obj):
            rows += flatten(v, f"{prefix}[{i}]")
    else:
        rows.append((prefix, obj))
    return rows


def kv_table(rows: list[tuple[str, object]], limit: int = 40) -> str:
    if not rows:
        return ""
    body = "".join(f'<tr><td>{escape(k)}</td><td class="{"num" if isinstance(v, (int, float)) else ""}">'
                   f'{escape(fmt_value(v))}</td></tr>' for k, v in rows[:limit])
    more = f"<p><em>… {len(rows) - limit} more values in summary.json below</em></p>" if len(rows) > limit else ""
    return f'<table class="kv">{body}</table>{more}'


def headline_table(rows) -> str:
    """An analysis's few numbers: what, the value (bold), what it means and what is good."""
    body = "".join(f'<tr><td>{escape(what)}</td><td class="num"><b>{escape(value)}</b></td>'
                   f'<td class="meaning">{escape(meaning)}</td></tr>' for what, value, meaning in rows)
    return f'<table class="headline">{body}</table>' if body else ""


def facts(rows: list[tuple[str, object]]) -> str:
    """Short key/value pairs as a wrapped row of chips."""
    return '<div class="facts">' + "".join(f'<span><b>{escape(k)}</b> {escape(fmt_value(v))}</span>'
                                           for k, v in rows) + "</div>"


def is_records(v) -> bool:
    """A list of dicts whose values are scalars or lists of scalars: shown as one table."""
    return (isinstance(v, list) and bool(v) and all(isinstance(r, dict) for r in v)
            and all(not isinstance(x, dict) and not (isinstance(x, list) and any(isinstance(y, (dict, list))
                                                                                  for y in x))
                    for r in v for x in r.values()))


def records_table(records: list[dict], limit: int = 30) -> str:
    cols: list[str] = []
    for r in records:
        cols += [k for k in r if k not in cols]
    rows = [[fmt_value(r.get(c)) for c in cols] for r in records[:limit]]
    more = f"<p><em>… {len(records) - limit} more rows in summary.json below</em></p>" if len(records) > limit else ""
    return table(cols, rows) + more


def table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def json_details(obj, label: str = "summary.json") -> str:
    text = json.dumps(obj, indent=2)
    if len(text) > 60000:
        text = text[:60000] + "\n… (truncated)"
    return f"<details><summary>{escape(label)}</summary><pre>{escape(text)}</pre></details>"


def command_block(command) -> str:
    if isinstance(command, (list, tuple)):
        command = " ".join(str(c) for c in command)
    return f'<code class="cmd">{escape(str(command))}</code>'


def page(title: str, subtitle: str, toc: list[tuple[str, str, bool]], body: list[str], footer: str) -> str:
    not_run = ' <span class="badge missing">not run</span>'
    links = "".join(f'<li><a href="#{escape(anchor)}">{escape(text)}</a>{"" if ok else not_run}</li>'
                    for anchor, text, ok in toc)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
            f'<header class="top"><h1>{escape(title)}</h1><p>{escape(subtitle)}</p>'
            f'<nav class="toc"><ul>{links}</ul></nav></header>'
            + "".join(body)
            + f"<footer>{footer}</footer></main></body></html>\n")
