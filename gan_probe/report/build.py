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
import math
import os
import re
import shlex
import subprocess
import sys
import time
from html import escape
from pathlib import Path
from typing import TextIO

from gan_probe import progress
from gan_probe.errors import GanProbeError
from gan_probe.report import html
from gan_probe.runs import ANALYSIS_DIR, command_line_of, read_summary, results_of
from gan_probe.report.sections import (ANALYSES, PAPER_CLASSIFICATION, Analysis, Datasets, Headline, fmt,
                                       inception_note, inception_weights_path, number, run_datasets)
from gan_probe.report.svg import line_plot
from gan_probe.report.training_eval import eval_section

MAX_IMAGES_PER_SECTION = 24
MAX_RESULT_ROWS = 15  # result rows a section shows outside its collapsed blocks
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
    if log:
        label, line = training_verdict(log)
        parts.append(f'<p class="verdict">Verdict: <b>{escape(label)}</b>: {escape(line)}</p>')
    parts.append(curves(log) if log else '<div class="note">no log.jsonl in the run</div>')
    parts.append(eval_section(log))  # train --eval-every's scores and probe, when logged
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
        if isinstance(default, bool) or isinstance(value, bool):  # (eval_probe's default is None)
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


# The training curves' verdict: a simple rule on the last fifth of log.jsonl (docs/report.md). Medians, as
# the logged values are noisy and one spike should not decide.
D_WON = (0.9, 0.1)  # median D(x) above the first and median D(G(z)) below the second: D tells them apart
D_FOOLED = 0.5  # median D(x) below it and median D(G(z)) above it: D no longer tells real from fake
OSCILLATE = 3.0  # loss D's interquartile range above this multiple of its median: the losses swing


def quantile(xs: list[float], q: float) -> float:
    """The ``q`` quantile of ``xs`` (nearest rank; ``xs`` not empty)."""
    ys = sorted(xs)
    return ys[round(q * (len(ys) - 1))]


def training_verdict(log: list[dict]) -> tuple[str, str]:
    """(label, one line with the numbers) for the training curves: ``diverged`` (a non-finite loss
    anywhere), else over the last fifth of the logged steps: ``D won`` (median D(x) > 0.9 and median
    D(G(z)) < 0.1, D's output before its own step), ``D fooled`` (median D(x) < 0.5 < median D(G(z))),
    ``losses oscillate`` (loss D's interquartile range > 3 times its median), else ``losses stable``. A verdict
    on the curves only: mode collapse shows in the samples, not here."""
    rows = [r for r in log if any(isinstance(r.get(k), (int, float)) for k in ("loss_d", "loss_g"))]
    if not rows:
        return "no curves", "log.jsonl holds no losses"
    if any(isinstance(r.get(k), float) and not math.isfinite(r[k]) for r in rows for k in ("loss_d", "loss_g")):
        return "diverged", "a loss became NaN or infinite"
    tail = rows[len(rows) - max(1, len(rows) // 5):]

    def values(key: str) -> list[float]:
        return [float(r[key]) for r in tail if number(r.get(key)) is not None]

    def median(key: str) -> float | None:
        xs = values(key)
        return quantile(xs, 0.5) if xs else None

    dx, dgz, ld, lg = median("d_x"), median("d_g_z1"), median("loss_d"), median("loss_g")
    losses_d = values("loss_d")
    iqr = quantile(losses_d, 0.75) - quantile(losses_d, 0.25) if losses_d else 0.0
    steps = [r["step"] for r in tail if number(r.get("step")) is not None]
    span = f"steps {steps[0]}-{steps[-1]}" if steps else f"the last {len(tail)} records"
    numbers = (f"medians over {span}: D(x) {fmt(dx, 2)}, D(G(z)) {fmt(dgz, 2)}, loss D {fmt(ld, 3)} "
               f"(IQR {fmt(iqr, 2)}), loss G {fmt(lg, 3)}")
    if dx is not None and dgz is not None and dx > D_WON[0] and dgz < D_WON[1]:
        return "D won", f"D tells real from generated almost perfectly; {numbers}; G is likely poor or collapsed"
    if dx is not None and dgz is not None and dx < D_FOOLED < dgz:
        return "D fooled", f"D rates generated images above real ones; {numbers}"
    if ld is not None and ld > 0 and iqr > OSCILLATE * ld:
        return "losses oscillate", numbers
    return "losses stable", numbers


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


def analysis_argv(a: Analysis, run_dir: Path, datasets: Datasets, loose=None, reduced: bool = False) -> list[str]:
    """The command (after ``gan-probe``) that makes ``a``: on the RUN_DIR, or on a loose model's G or D
    (:mod:`gan_probe.report.loose`); ``reduced``: its smaller CPU command (``cpu_args``) where it has one."""
    make = a.cpu_args if reduced and a.cpu_args is not None else a.args
    return loose.argv(a, make) if loose is not None else make(str(run_dir), datasets)


def analysis_section(run_dir: Path, a: Analysis, datasets: Datasets, ran: dict | None,
                     loose=None) -> tuple[str, bool]:
    """(HTML, whether the analysis was found)."""
    folder = run_dir / ANALYSIS_DIR / a.name
    command = "gan-probe " + shlex.join(analysis_argv(a, run_dir, datasets, loose))
    head = (f'<section id="{a.name}"><h2>{escape(a.title)}'
            f'<span class="badge {{cls}}">{{status}}</span></h2>'
            f'<p class="fig-ref">Paper: {escape(a.figure)}</p><p class="blurb">{escape(a.blurb)}</p>')
    extra = inception_block(folder) if a.name == "score" else ""
    if not folder.is_dir():
        parts = [head.format(cls="missing", status="not run"),
                 "<p>Not run. Make it with:</p>", html.command_block(command)]
        if loose is not None and loose.missing(a) and not ran:
            parts.append(f'<div class="note">{escape(loose.missing(a))}</div>')
        if ran and ran.get("error"):
            parts.append(f'<div class="error">--run-missing: {escape(ran["error"])}</div>')
        if a.name == "classify":
            parts.append(classification_table())
        return "".join(parts) + extra + "</section>", False
    summary, problem = read_summary(folder)
    parts = [head.format(cls="ok", status="done")]
    made_by = command_line_of(summary) if summary else None
    if made_by:
        parts.append("<p>Made by:</p>" + html.command_block(made_by))
    else:
        parts.append("<p>Made by (default command):</p>" + html.command_block(command))
    if ran and ran.get("note"):  # run by --run-missing with smaller samples (on the CPU)
        parts.append(f'<div class="note">--run-missing: {escape(ran["note"])}</div>')
    if problem:
        parts.append(f'<div class="note">{escape(problem)}</div>')
    results = results_of(summary or {})
    headline = headline_of(a, summary)
    if headline is not None:
        parts.append("<h3>Key numbers</h3>" + html.headline_table(headline.rows))
    elif results:
        parts.append(results_block(results, MAX_RESULT_ROWS))
    images = section_images(folder, summary)
    if images:
        parts.append("<h3>Figures</h3>" + embed_images(images, folder, summary))
    if a.name == "classify":
        parts.append(classification_table())
    parts.append(details_block(summary, results))
    if not images and not summary:
        parts.append('<div class="note">the folder is empty</div>')
    return "".join(parts) + extra + "</section>", True


def headline_of(a: Analysis, summary: dict | None) -> Headline | None:
    """The analysis's headline numbers from its summary (None: no summary, or no headline function)."""
    return a.headline(summary) if summary and a.headline is not None else None


def details_block(summary: dict | None, results: dict) -> str:
    """Settings, provenance, every result and summary.json, collapsed (one click away)."""
    if not summary:
        return ""
    inner = ""
    settings = summary.get("settings")
    if isinstance(settings, dict) and settings:
        inner += "<h3>Settings</h3>" + html.facts(html.flatten(settings))
    inner += provenance_block(summary) + results_block(results)
    n = len(html.flatten(results))
    return (f"<details><summary>settings, provenance and all {n} result values</summary>{inner}</details>"
            + html.json_details(summary))


def provenance_block(summary: dict) -> str:
    """What the run read, its seed and the versions it ran with (the contract's keys), as facts."""
    facts = {k: summary[k] for k in ("paper_figure", "seed", "provenance", "versions") if summary.get(k) is not None}
    return "<h3>Provenance</h3>" + html.facts(html.flatten(facts)) if facts else ""


def results_block(results: dict, limit: int | None = None) -> str:
    """Scalars as a key/value table; lists of flat records as tables of their own. With ``limit``: at
    most that many rows in all (records only if the scalars leave room), the rest left to summary.json."""
    records = {k: v for k, v in results.items() if html.is_records(v)}
    rows = html.flatten({k: v for k, v in results.items() if k not in records})
    if not rows and not records:
        return ""
    if limit is None:
        out = "<h3>Results</h3>" + html.kv_table(rows)
        for k, v in records.items():
            out += f"<p><b>{escape(k)}</b></p>" + html.records_table(v)
        return out
    out = "<h3>Results</h3>" + html.kv_table(rows, limit=limit)
    room = limit - min(len(rows), limit)
    for k, v in records.items():
        if room < 2:
            out += f"<p><em>{escape(k)}: {len(v)} records in summary.json below</em></p>"
            continue
        out += f"<p><b>{escape(k)}</b></p>" + html.records_table(v, limit=room)
        room -= min(len(v), room)
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


def classification_table() -> str:
    body = [[where, what, value, note] for where, what, value, note in PAPER_CLASSIFICATION]
    return "<h3>The paper's numbers</h3>" + html.table(["dataset", "metric", "DCGAN + L2-SVM (paper)", "note"], body)


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
        parts.append(results_block(results_of(summary), MAX_RESULT_ROWS))
        parts.append(details_block(summary, results_of(summary)))
    elif problem:
        parts.append(f'<div class="note">{escape(problem)}</div>')
    return "".join(parts) + "</section>"


def overview_section(run_dir: Path, config: dict, lines: list[tuple[str, str, str]], loose=None) -> str:
    """The one-screen summary: the run, its curves' verdict, one line per analysis (anchor, title, line)."""
    if loose is not None:  # a model gan-probe did not train: no run, no curves
        rows = "".join(f'<tr><td><a href="#{escape(anchor)}">{escape(title)}</a></td><td>{escape(text)}</td></tr>'
                       for anchor, title, text in lines)
        models = ", ".join(f"<code>{escape(p)}</code>" for p in loose.cards)
        return ('<section id="summary"><h2>Summary</h2>'
                f'<p>Model {models}: not trained by gan-probe, so no training curves; analyses from '
                f'<code>{escape(str(run_dir / ANALYSIS_DIR))}</code>.</p>'
                f'<table class="overview"><tr><th>analysis</th><th>headline</th></tr>{rows}</table></section>')
    train, model = config.get("train", {}), config.get("model", {})
    log, _ = read_log(run_dir / "log.jsonl")
    steps = [r["step"] for r in log if number(r.get("step")) is not None]
    what = [f"{train.get('dataset', '?')}"]
    if model.get("image_size"):
        what.append(f"{model['image_size']} px")
    if train.get("max_steps"):
        what.append(f"{train['max_steps']} steps")
    elif train.get("epochs"):
        what.append(f"{train['epochs']} epochs")
    if steps:
        what.append(f"last logged step {int(max(steps))}")
    if train.get("batch_size"):
        what.append(f"batch {train['batch_size']}")
    if "ngf" in train or "ndf" in train:
        what.append(f"G width {train.get('ngf', '?')}, D width {train.get('ndf', '?')}")
    label, line = training_verdict(log) if log else ("no curves", "no log.jsonl in the run")
    rows = "".join(f'<tr><td><a href="#{escape(anchor)}">{escape(title)}</a></td><td>{escape(text)}</td></tr>'
                   for anchor, title, text in lines)
    return ('<section id="summary"><h2>Summary</h2>'
            f'<p>Run <code>{escape(str(run_dir))}</code>: DCGAN on {escape(", ".join(what))}.</p>'
            f'<p class="verdict"><a href="#training">Training curves</a>: <b>{escape(label)}</b>: '
            f'{escape(line)}</p>'
            f'<table class="overview"><tr><th>analysis</th><th>headline</th></tr>{rows}</table></section>')


def overview_line(run_dir: Path, a: Analysis, ran: dict | None = None) -> str:
    """The analysis's one line for the summary: its headline, or why there is none."""
    folder = run_dir / ANALYSIS_DIR / a.name
    if not folder.is_dir():
        return f"not run ({ran['error']})" if ran and ran.get("error") else "not run"
    summary, problem = read_summary(folder)
    headline = headline_of(a, summary)
    return headline.line if headline is not None else (problem or "done (see its section)")


# ---------------------------------------------------------------- running missing analyses
def run_missing_analyses(run_dir: Path, datasets: Datasets, timeout: float = 1800.0,
                         log: TextIO | None = None, loose=None) -> dict[str, dict]:
    """Run each missing offline analysis as ``python -m gan_probe <cmd> RUN_DIR ...`` (a loose model:
    ``<cmd> MODEL ...`` with its --class / --psi / --trust-pickle); never raises.
    On the CPU an analysis with ``cpu_args`` runs those instead (smaller samples; its ``cpu_note`` is
    logged and shown in its section). ``log`` (default stderr): a line per analysis as it starts and
    ends, and the child's own stderr as it comes, so its progress lines (a line every few seconds with
    the time left) reach the user."""
    log = log if log is not None else sys.stderr
    todo = [a for a in ANALYSES if not (run_dir / ANALYSIS_DIR / a.name).is_dir() and a.offline]
    on_cpu = analysis_device() == "cpu"
    ran: dict[str, dict] = {}
    for i, a in enumerate(todo, 1):
        if loose is not None and loose.missing(a):
            ran[a.name] = {"error": f"skipped: {loose.missing(a)}"}
            _say(log, f"report: [{i}/{len(todo)}] {a.name}: {ran[a.name]['error']}")
            continue
        if a.name == "score" and inception_weights_path() is None:
            ran[a.name] = {"error": "skipped: pytorch-fid's Inception weights are not installed"}
            _say(log, f"report: [{i}/{len(todo)}] {a.name}: {ran[a.name]['error']}")
            continue
        reduced = on_cpu and a.cpu_args is not None
        why = a.cpu_note if reduced else ""
        argv = [sys.executable, "-m", "gan_probe", *analysis_argv(a, run_dir, datasets, loose, reduced)]
        _say(log, f"report: [{i}/{len(todo)}] {a.name}: gan-probe {shlex.join(argv[3:])}"
                  + (f"\n        ({why})" if why else ""))
        t0 = time.perf_counter()
        code, error, tail = run_streaming(argv, timeout, log, prefix=f"  {a.name}: ")
        if not error and code < 0:
            error = f"stopped by signal {-code}"
        elif not error and code != 0:
            error = one_line_error("\n".join(tail), code)
        if not error and not (run_dir / ANALYSIS_DIR / a.name).is_dir():
            error = f"finished but wrote nothing to analysis/{a.name}/"
        seconds = round(time.perf_counter() - t0, 1)
        ran[a.name] = {"error": error, "seconds": seconds, "argv": argv[1:], **({"note": why} if why else {})}
        _say(log, f"report: [{i}/{len(todo)}] {a.name}: " + (f"failed after {progress.clock(seconds)}: {error}"
                                                              if error else f"done in {progress.clock(seconds)}"))
    return ran


def analysis_device() -> str:
    """The device type the analyses' ``--device auto`` picks: cuda, mps or cpu."""
    from gan_probe.device import resolve_device

    return resolve_device("auto").type


def _say(log: TextIO, line: str) -> None:
    log.write(line + "\n")
    log.flush()


def run_streaming(argv: list[str], timeout: float, log: TextIO, prefix: str = "") -> tuple[int, str, list[str]]:
    """Run ``argv`` with its stdout discarded and its stderr copied, line by line as it comes, to ``log``
    (each line after ``prefix``). Returns (exit code, "" or why it did not run to the end, the last 50
    lines of its stderr)."""
    import collections
    import threading

    tail: collections.deque[str] = collections.deque(maxlen=50)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                errors="replace", env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except OSError as e:
        return -1, f"could not start: {e}", []

    def copy() -> None:
        for line in proc.stderr:
            line = line.rstrip("\n")
            tail.append(line)
            if line.strip():
                _say(log, prefix + line)

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        reader.join(5)
        return -1, f"timed out after {timeout:.0f} s", list(tail)
    reader.join()
    return code, "", list(tail)


def one_line_error(stderr: str, code: int) -> str:
    lines = [ln.strip(" │╭╮╰╯─") for ln in stderr.splitlines()]
    lines = [ln.strip() for ln in lines if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith(("error", "no such command", "usage")) or "Error" in ln:
            return ln[:300]
    return (lines[-1][:300] if lines else f"exit code {code}")


# ---------------------------------------------------------------- the page
def build_report(run_dir: str | os.PathLike, run_missing: bool = False, loose=None) -> tuple[str, dict]:
    """(HTML text, a summary of what the page holds); ``loose``: a
    :class:`gan_probe.report.loose.LooseModel` (a model gan-probe did not train; ``run_dir`` is then
    the folder its analyses are in)."""
    run_dir = Path(run_dir)
    if loose is None:
        check_run_dir(run_dir)
    config, config_problem = read_config(run_dir) if loose is None else ({}, "")
    datasets = run_datasets(str(config.get("train", {}).get("dataset", "")))
    ran = run_missing_analyses(run_dir, datasets, loose=loose) if run_missing else {}
    if loose is None:
        body = [training_section(run_dir, config, config_problem)]
        toc = [("training", "Training: samples and curves (Figs. 2-3)", True)]
    else:
        from gan_probe.report.loose import model_section

        body, toc = [model_section(loose)], [("training", "Model: its card (not trained by gan-probe)", True)]
    status: dict[str, str] = {}
    lines: list[tuple[str, str, str]] = []
    for a in ANALYSES:
        section, found = analysis_section(run_dir, a, datasets, ran.get(a.name), loose)
        body.append(section)
        lines.append((a.name, a.title, overview_line(run_dir, a, ran.get(a.name))))
        toc.append((a.name, f"{a.title} ({a.figure.split(';')[0].split(' (')[0]})", found))
        status[a.name] = "done" if found else "not run"
    known = {a.name for a in ANALYSES}
    analysis_root = run_dir / ANALYSIS_DIR
    for folder in sorted(analysis_root.iterdir()) if analysis_root.is_dir() else []:
        if folder.is_dir() and folder.name not in known:
            body.append(other_section(folder))
            toc.append((f"extra-{folder.name}", folder.name, True))
            status[folder.name] = "done"
    body.insert(0, overview_section(run_dir, config, lines, loose))
    toc.insert(0, ("summary", "Summary: the run and each analysis's headline", True))
    dataset = config.get("train", {}).get("dataset", "?")
    title = f"gan-probe report: {run_dir.resolve().name}"
    what = (f"DCGAN (Radford, Metz, Chintala 2015) trained on {dataset}" if loose is None else
             f"{', '.join(Path(p).name for p in loose.cards)}: a model gan-probe did not train")
    subtitle = (f"{what}; laid out like the paper's figures. {sum(v == 'done' for v in status.values())} of "
                f"{len(status)} analyses present.")
    footer = (f"Written by <code>gan-probe report {escape(str(run_dir))}</code> on "
              f"{escape(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}. Self-contained: every image is "
              f"embedded, nothing is fetched from the network.")
    text = html.page(title, subtitle, toc, body, footer)
    return text, {"run_dir": str(run_dir), "sections": status, "ran": ran}


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 run_missing: bool = False, **model) -> dict:
    """Write the report of a RUN_DIR, or of a loose model file (TorchScript, card, pickle: ``model``
    takes :func:`gan_probe.report.loose.loose_model`'s options: gen, disc, dataset, class_index, psi,
    trust_pickle) to ``out`` (default: ``report.html`` in the RUN_DIR / the model's folder)."""
    from gan_probe.io import atomic_write_text
    from gan_probe.models.sources import is_foreign

    loose = None
    if is_foreign(run_dir):
        from gan_probe.report.loose import loose_model

        loose = loose_model(run_dir, **model)
    elif given := [k for k, v in model.items() if not (v is None or v is False or (k == "psi" and v == 1.0))]:
        raise GanProbeError(f"{', '.join(given)} apply to a report over a model file (TorchScript, card, pickle), "
                            f"not to a RUN_DIR", param=given[0])
    folder = loose.folder if loose is not None else Path(run_dir)
    text, info = build_report(folder, run_missing, loose)
    out = Path(out) if out else folder / "report.html"
    atomic_write_text(out, text)
    return {**info, "out": str(out), "bytes": len(text.encode())}
