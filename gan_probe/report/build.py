"""`gan-probe report RUN_DIR`: one self-contained HTML page laid out like the paper's figures.

Reads what the run wrote (config.json, log.jsonl, samples/) and every analysis
folder (RUN_DIR/analysis/<name>/: PNG/GIF figures + summary.json). Nothing fails
because a part is absent: a missing analysis is listed as "not run" with the
command that makes it, and ``run_missing=True`` runs the offline ones first (as
subprocesses ``python -m gan_probe <cmd> RUN_DIR ...``; a command that fails or
does not exist is listed with its one-line error).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from html import escape
from pathlib import Path

from gan_probe.errors import GanProbeError
from gan_probe.report import html
from gan_probe.runs import ANALYSIS_DIR, command_line_of, read_summary, results_of
from gan_probe.report.sections import (ANALYSES, PAPER_CLASSIFICATION, Analysis, Datasets, inception_note,
                                       inception_weights_path, run_datasets)
from gan_probe.report.svg import line_plot

MAX_IMAGES_PER_SECTION = 24
MAX_BYTES_PER_SECTION = 12 * 2**20
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".webp")


# ---------------------------------------------------------------- reading the run
def check_run_dir(run_dir: Path) -> None:
    if not run_dir.exists():
        raise GanProbeError(f"run directory not found: {run_dir}")
    if not run_dir.is_dir():
        raise GanProbeError(f"not a run directory (a file): {run_dir}; give the folder `gan-probe train --out` wrote")
    if not any((run_dir / p).exists() for p in ("config.json", "log.jsonl", "samples", "checkpoints", "analysis")):
        raise GanProbeError(f"{run_dir} is not a gan-probe run (no config.json, log.jsonl, samples/, checkpoints/ "
                            f"or analysis/)")


def read_config(run_dir: Path) -> tuple[dict, str]:
    """(config.json contents or {}, a one-line problem or "")."""
    p = run_dir / "config.json"
    if not p.is_file():
        return {}, "config.json not found"
    try:
        d = json.loads(p.read_text())
        return (d, "") if isinstance(d, dict) else ({}, "config.json is not a JSON object")
    except (OSError, json.JSONDecodeError) as e:
        return {}, f"config.json unreadable ({type(e).__name__})"


def read_log(path: Path) -> tuple[list[dict], int]:
    """(records, number of unreadable lines) of a log.jsonl; a run killed mid-line loses one line, not the plot."""
    if not path.is_file():
        return [], 0
    rows, bad = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            rows.append(r) if isinstance(r, dict) else None
        except json.JSONDecodeError:
            bad += 1
    return rows, bad


def epoch_samples(samples: Path) -> list[tuple[str, Path]]:
    """(caption, path) for real.png and the first, middle and last epoch grids (paper Figs. 2-3)."""
    out: list[tuple[str, Path]] = []
    if (samples / "real.png").is_file():
        out.append(("training images", samples / "real.png"))
    epochs = sorted((int(m.group(1)), p) for p in samples.glob("epoch_*.png")
                    if (m := re.fullmatch(r"epoch_(\d+)\.png", p.name)))
    picks = [epochs[0], epochs[len(epochs) // 2], epochs[-1]] if epochs else []
    seen = set()
    for e, p in picks:
        if e not in seen:
            seen.add(e)
            note = " (cf. Fig. 2: one epoch)" if e == 1 else (" (cf. Fig. 3: five epochs)" if e == 5 else "")
            out.append((f"G(fixed z) after epoch {e}{note}", p))
    steps = sorted(samples.glob("step_*.png"))
    if steps:
        m = re.fullmatch(r"step_(\d+)\.png", steps[-1].name)
        out.append((f"G(fixed z) at the final step {int(m.group(1)) if m else ''}", steps[-1]))
    return out


# ---------------------------------------------------------------- sections
def header_facts(run_dir: Path, config: dict) -> list[tuple[str, object]]:
    train, model = config.get("train", {}), config.get("model", {})
    rows: list[tuple[str, object]] = [("run", str(run_dir))]
    for key in ("dataset", "epochs", "max_steps", "batch_size", "lr", "beta1", "seed"):
        if key in train:
            rows.append((key, train[key]))
    for key in ("image_size", "channels", "nz", "z_dist", "kernel_size", "g_channels", "d_channels"):
        if key in model:
            rows.append((key, model[key]))
    return rows


def training_section(run_dir: Path, config: dict, config_problem: str) -> str:
    parts = ['<section id="training"><h2>Training</h2>',
             '<p class="fig-ref">Figs. 2-3 (samples over training)</p>',
             '<p class="blurb">What <code>gan-probe train</code> wrote: the same fixed z decoded after each epoch '
             '(G in eval mode), and the losses and D outputs logged during training.</p>']
    cmd = training_command(run_dir, config)
    if cmd:
        parts.append(html.command_block(cmd))
    parts.append(html.facts(header_facts(run_dir, config)))
    if config_problem:
        parts.append(f'<div class="note">{escape(config_problem)}</div>')
    samples = epoch_samples(run_dir / "samples")
    parts.append("<h3>Samples over training</h3>")
    if samples:
        parts.append('<div class="figs samples">' + "".join(html.figure(p, c, 340) for c, p in samples) + "</div>")
    else:
        parts.append('<div class="note">no sample grids in samples/ (written by gan-probe train each epoch)</div>')
    parts.append("<h3>Training curves</h3>")
    log, bad = read_log(run_dir / "log.jsonl")
    parts.append(curves(log) if log else '<div class="note">no log.jsonl in the run</div>')
    if bad:
        parts.append(f'<div class="note">{bad} unreadable line(s) in log.jsonl were skipped</div>')
    parts.append("</section>")
    return "".join(parts)


def training_command(run_dir: Path, config: dict) -> str:
    """The `gan-probe train` command that made the run: every option that differs from its default."""
    from dataclasses import fields

    from gan_probe.train import TrainConfig

    train = config.get("train")
    if not isinstance(train, dict):
        return ""
    defaults = TrainConfig()
    args = ["gan-probe", "train"]
    for f in fields(TrainConfig):
        if f.name in ("out", "model_config") or f.name not in train:
            continue
        value, default = train[f.name], getattr(defaults, f.name)
        if (value == default and f.name != "dataset") or (f.name == "epochs" and train.get("max_steps")):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            args.append(flag if value else "--no-" + f.name.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return shlex.join(args + ["--out", str(run_dir)])


def curves(log: list[dict]) -> str:
    def series(key: str) -> tuple[list[float], list[float]]:
        pts = [(float(r["step"]), float(r[key])) for r in log
               if isinstance(r.get(key), (int, float)) and isinstance(r.get("step"), (int, float))]
        return [p[0] for p in pts], smooth([p[1] for p in pts])

    losses = {name: series(key) for name, key in (("loss D", "loss_d"), ("loss G", "loss_g"))}
    outs = {name: series(key) for name, key in (("D(x)", "d_x"), ("D(G(z)) before D step", "d_g_z1"),
                                                ("D(G(z)) after D step", "d_g_z2"))}
    return ('<div class="plots">'
            + line_plot({k: v for k, v in losses.items() if v[0]}, title="Losses (BCE)", xlabel="step")
            + line_plot({k: v for k, v in outs.items() if v[0]}, title="Discriminator outputs", xlabel="step",
                        y_range=(0.0, 1.0))
            + "</div>")


def smooth(ys: list[float], max_raw: int = 200) -> list[float]:
    """Long logs: a centred running mean over ~1% of the points (short ones are drawn raw)."""
    if len(ys) <= max_raw:
        return ys
    half = max(1, len(ys) // 200)
    prefix = [0.0]
    for y in ys:
        prefix.append(prefix[-1] + y)
    out = []
    for i in range(len(ys)):
        a, b = max(0, i - half), min(len(ys), i + half + 1)
        out.append((prefix[b] - prefix[a]) / (b - a))
    return out


def section_images(folder: Path, summary: dict | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    listed = []
    if summary and isinstance(summary.get("files"), dict):
        for v in summary["files"].values():
            if isinstance(v, str):
                q = Path(v) if Path(v).is_absolute() else folder / Path(v).name
                listed.append(q.resolve())
    rank = {p: i for i, p in enumerate(listed)}
    return sorted(files, key=lambda p: (rank.get(p.resolve(), len(rank)), str(p)))


def caption_for(path: Path, folder: Path, summary: dict | None) -> str:
    caps = (summary or {}).get("captions")
    if isinstance(caps, dict) and isinstance(caps.get(path.name), str):
        return caps[path.name]
    return str(path.relative_to(folder)).rsplit(".", 1)[0].replace("_", " ")


def analysis_section(run_dir: Path, a: Analysis, datasets: Datasets, ran: dict | None) -> tuple[str, bool]:
    """(HTML, whether the analysis was found)."""
    folder = run_dir / ANALYSIS_DIR / a.name
    command = "gan-probe " + shlex.join(a.args(str(run_dir), datasets))
    head = (f'<section id="{a.name}"><h2>{escape(a.title)}'
            f'<span class="badge {{cls}}">{{status}}</span></h2>'
            f'<p class="fig-ref">Paper: {escape(a.figure)}</p><p class="blurb">{escape(a.blurb)}</p>')
    extra = inception_block(folder) if a.name == "score" else ""
    if not folder.is_dir():
        parts = [head.format(cls="missing", status="not run"),
                 "<p>Not run. Make it with:</p>", html.command_block(command)]
        if ran and ran.get("error"):
            parts.append(f'<div class="error">--run-missing: {escape(ran["error"])}</div>')
        if a.name == "classify":
            parts.append(classification_table([]))
        return "".join(parts) + extra + "</section>", False
    summary, problem = read_summary(folder)
    parts = [head.format(cls="ok", status="done")]
    made_by = command_line_of(summary) if summary else None
    if made_by:
        parts.append("<p>Made by:</p>" + html.command_block(made_by))
    else:
        parts.append("<p>Made by (default command):</p>" + html.command_block(command))
    if problem:
        parts.append(f'<div class="note">{escape(problem)}</div>')
    settings = (summary or {}).get("settings")
    if isinstance(settings, dict) and settings:
        parts.append("<h3>Settings</h3>" + html.facts(html.flatten(settings)))
    parts.append(provenance_block(summary or {}))
    images = section_images(folder, summary)
    if images:
        parts.append("<h3>Figures</h3>" + embed_images(images, folder, summary))
    results = results_of(summary or {})
    rows = html.flatten(results)
    if a.name == "classify":
        parts.append(classification_table(rows))
    parts.append(results_block(results))
    if summary:
        parts.append(html.json_details(summary))
    if not images and not summary:
        parts.append('<div class="note">the folder is empty</div>')
    return "".join(parts) + extra + "</section>", True


def provenance_block(summary: dict) -> str:
    """What the run read, its seed and the versions it ran with (the contract's keys), as facts."""
    facts = {k: summary[k] for k in ("paper_figure", "seed", "provenance", "versions") if summary.get(k) is not None}
    return "<h3>Provenance</h3>" + html.facts(html.flatten(facts)) if facts else ""


def results_block(results: dict) -> str:
    """Scalars as a key/value table; lists of flat records as tables of their own."""
    records = {k: v for k, v in results.items() if html.is_records(v)}
    rows = html.flatten({k: v for k, v in results.items() if k not in records})
    if not rows and not records:
        return ""
    out = "<h3>Results</h3>" + html.kv_table(rows)
    for k, v in records.items():
        out += f"<p><b>{escape(k)}</b></p>" + html.records_table(v)
    return out


def embed_images(images: list[Path], folder: Path, summary: dict | None) -> str:
    shown, total, skipped = [], 0, []
    for p in images:
        size = p.stat().st_size
        if len(shown) >= MAX_IMAGES_PER_SECTION or total + size > MAX_BYTES_PER_SECTION:
            skipped.append(p)
            continue
        total += size
        shown.append(html.figure(p, caption_for(p, folder, summary)))
    out = '<div class="figs">' + "".join(shown) + "</div>"
    if skipped:
        names = ", ".join(str(p.relative_to(folder)) for p in skipped[:10])
        out += (f'<div class="note">{len(skipped)} more image(s) not embedded to keep the page small: '
                f'{escape(names)}{" …" if len(skipped) > 10 else ""}</div>')
    return out


def inception_block(folder: Path) -> str:
    summary, _ = read_summary(folder) if folder.is_dir() else (None, "")
    has_fid = bool(summary) and any("fid" in k.lower() for k, _ in html.flatten(summary))
    if has_fid or inception_weights_path() is not None:
        return ""
    return f'<div class="note">{escape(inception_note())}</div>'


def classification_table(rows: list[tuple[str, object]]) -> str:
    ours = [(k, v) for k, v in rows if isinstance(v, (int, float)) and not isinstance(v, bool)
            and re.search(r"acc|error|err\b", k, re.I)]
    body = [[where, what, value, note] for where, what, value, note in PAPER_CLASSIFICATION]
    out = "<h3>The paper's numbers</h3>" + html.table(["dataset", "metric", "DCGAN + L2-SVM (paper)", "note"], body)
    if ours:
        out += "<h3>This run</h3>" + html.table(["value", ""], [[k, html.fmt_value(v)] for k, v in ours[:12]])
    return out


def other_section(folder: Path) -> str:
    summary, problem = read_summary(folder)
    parts = [f'<section id="extra-{escape(folder.name)}"><h2>{escape(folder.name)}</h2>']
    made_by = command_line_of(summary) if summary else None
    if made_by or (summary and summary.get("command")):
        parts.append(html.command_block(made_by or summary["command"]))
    images = section_images(folder, summary)
    if images:
        parts.append(embed_images(images, folder, summary))
    if summary:
        parts.append(provenance_block(summary))
        parts.append(results_block(results_of(summary)))
        parts.append(html.json_details(summary))
    elif problem:
        parts.append(f'<div class="note">{escape(problem)}</div>')
    return "".join(parts) + "</section>"


# ---------------------------------------------------------------- running missing analyses
def run_missing_analyses(run_dir: Path, datasets: Datasets, timeout: float = 1800.0) -> dict[str, dict]:
    """Run each missing offline analysis as ``python -m gan_probe <cmd> RUN_DIR ...``; never raises."""
    ran: dict[str, dict] = {}
    for a in ANALYSES:
        if (run_dir / ANALYSIS_DIR / a.name).is_dir() or not a.offline:
            continue
        if a.name == "score" and inception_weights_path() is None:
            ran[a.name] = {"error": "skipped: pytorch-fid's Inception weights are not installed"}
            continue
        argv = [sys.executable, "-m", "gan_probe", *a.args(str(run_dir), datasets)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
            error = "" if proc.returncode == 0 else one_line_error(proc.stderr, proc.returncode)
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:.0f} s"
        except OSError as e:
            error = f"could not start: {e}"
        if not error and not (run_dir / ANALYSIS_DIR / a.name).is_dir():
            error = f"finished but wrote nothing to analysis/{a.name}/"
        ran[a.name] = {"error": error, "seconds": round(time.perf_counter() - t0, 1), "argv": argv[1:]}
    return ran


def one_line_error(stderr: str, code: int) -> str:
    lines = [ln.strip(" │╭╮╰╯─") for ln in stderr.splitlines()]
    lines = [ln.strip() for ln in lines if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith(("error", "no such command", "usage")) or "Error" in ln:
            return ln[:300]
    return (lines[-1][:300] if lines else f"exit code {code}")


# ---------------------------------------------------------------- the page
def build_report(run_dir: str | os.PathLike, run_missing: bool = False) -> tuple[str, dict]:
    """(HTML text, a summary of what the page holds)."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    config, config_problem = read_config(run_dir)
    datasets = run_datasets(str(config.get("train", {}).get("dataset", "")))
    ran = run_missing_analyses(run_dir, datasets) if run_missing else {}
    body = [training_section(run_dir, config, config_problem)]
    toc = [("training", "Training: samples and curves (Figs. 2-3)", True)]
    status: dict[str, str] = {}
    for a in ANALYSES:
        section, found = analysis_section(run_dir, a, datasets, ran.get(a.name))
        body.append(section)
        toc.append((a.name, f"{a.title} ({a.figure.split(';')[0].split(' (')[0]})", found))
        status[a.name] = "done" if found else "not run"
    known = {a.name for a in ANALYSES}
    analysis_root = run_dir / ANALYSIS_DIR
    for folder in sorted(analysis_root.iterdir()) if analysis_root.is_dir() else []:
        if folder.is_dir() and folder.name not in known:
            body.append(other_section(folder))
            toc.append((f"extra-{folder.name}", folder.name, True))
            status[folder.name] = "done"
    dataset = config.get("train", {}).get("dataset", "?")
    title = f"gan-probe report: {run_dir.resolve().name}"
    subtitle = (f"DCGAN (Radford, Metz, Chintala 2015) trained on {dataset}; "
                f"laid out like the paper's figures. {sum(v == 'done' for v in status.values())} of "
                f"{len(status)} analyses present.")
    footer = (f"Written by <code>gan-probe report {escape(str(run_dir))}</code> on "
              f"{escape(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}. Self-contained: every image is "
              f"embedded, nothing is fetched from the network.")
    text = html.page(title, subtitle, toc, body, footer)
    return text, {"run_dir": str(run_dir), "sections": status, "ran": ran}


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 run_missing: bool = False) -> dict:
    from gan_probe.io import atomic_write_text

    text, info = build_report(run_dir, run_missing)
    out = Path(out) if out else Path(run_dir) / "report.html"
    atomic_write_text(out, text)
    return {**info, "out": str(out), "bytes": len(text.encode())}
