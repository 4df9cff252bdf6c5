"""The contract of an analysis run: where it writes, what its ``summary.json`` holds, how that is
written and how it is read. Every analysis (walk, arithmetic, memorization, classify, score,
filters) and the report go through this module; nothing else computes a RUN_DIR or dumps a summary.

Where
    An analysis of a checkpoint writes into ``RUN_DIR/analysis/<name>/`` (:func:`default_out`):
    RUN_DIR is the folder given, or the run a checkpoint file sits in
    (``RUN_DIR/checkpoints/x.pt``), or a loose checkpoint file's own folder (:func:`run_dir_of`).
    :func:`find_run_dir` is the strict form (``None`` unless the path is part of a training run),
    for commands whose input may be anything (``score`` of an image folder writes nothing).

What (one JSON object; the object ``--json`` prints)
    ``analysis``      the analysis name: the folder under ``RUN_DIR/analysis/`` (walk, classify, ...)
    ``command``       the ``gan-probe`` command that makes it (written as the whole command line by
                      summaries older than this contract)
    ``argv``          the command line that reproduces the run: ``["gan-probe", "walk", CKPT, "--rows", "4"]``
                      (the library's arguments rendered as flags, so a Python call records it too)
    ``settings``      the analysis's parameters (object)
    ``provenance``    what it read: ``checkpoint`` (the file), ``run_dir``, and its data (object)
    ``seed``          the seed every random draw derives from (``null`` when nothing is drawn)
    ``versions``      ``gan_probe``, ``torch``, ``python``
    ``paper_figure``  the figure or table of the DCGAN paper it answers (optional)
    ``files``         name -> path of every file it wrote; the report shows images in this order
    ``captions``      image file name -> caption (optional)
    everything else   results, named by the analysis (the report tables them)

How
    :func:`new_summary` builds the object (contract keys first, then the results);
    :func:`write_summary` checks it and writes it atomically, two-space indented; :func:`read_summary`
    reads one back (any JSON object: older summaries lack some keys), :func:`results_of` splits off the
    results and :func:`command_line_of` gives the command to show.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
from pathlib import Path
from typing import Any, Callable

ANALYSIS_DIR = "analysis"
SUMMARY_FILE = "summary.json"
CHECKPOINTS_DIR = "checkpoints"
PROGRAM = "gan-probe"

# the keys the contract defines; every other key of a summary is a result
META_KEYS = ("analysis", "command", "argv", "paper_figure", "settings", "provenance", "seed", "versions", "files",
             "captions")
# every summary written through :func:`write_summary` has these, with these types
REQUIRED: dict[str, tuple[type, ...]] = {
    "analysis": (str,), "command": (str,), "argv": (list,), "settings": (dict,), "provenance": (dict,),
    "seed": (int, type(None)), "versions": (dict,), "files": (dict,),
}


# ---------------------------------------------------------------- where
def find_run_dir(path: str | os.PathLike) -> Path | None:
    """The training run ``path`` is part of: a folder holding ``checkpoints/``, or a file inside
    such a ``checkpoints/`` folder. ``None`` for anything else (an image folder, a dataset name,
    a loose checkpoint file)."""
    p = Path(path)
    if p.is_dir() and (p / CHECKPOINTS_DIR).is_dir():
        return p
    if p.is_file() and p.parent.name == CHECKPOINTS_DIR:
        return p.parent.parent
    return None


def run_dir_of(checkpoint: str | os.PathLike) -> Path:
    """RUN_DIR of a checkpoint file or RUN_DIR: the folder given, or the run a checkpoint file
    sits in (``RUN_DIR/checkpoints/x.pt``); a loose checkpoint file's own folder stands in."""
    p = Path(checkpoint)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == CHECKPOINTS_DIR else p.parent


def default_out(checkpoint: str | os.PathLike, name: str) -> Path:
    """``RUN_DIR/analysis/<name>``: where analysis ``name`` of ``checkpoint`` writes by default."""
    return run_dir_of(checkpoint) / ANALYSIS_DIR / name


# ---------------------------------------------------------------- what
def versions() -> dict[str, str | None]:
    """The versions a result depends on (torch's from the installed metadata: imports nothing)."""
    from importlib import metadata

    from gan_probe import __version__

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {"gan_probe": __version__, "torch": version("torch"), "python": platform.python_version()}


def provenance(checkpoint: str | os.PathLike | None = None, **inputs: Any) -> dict:
    """What a run read: the checkpoint file (a RUN_DIR resolved to its ``checkpoints/last.pt``), its
    RUN_DIR, and any other inputs (``dataset=...``), as JSON-ready values."""
    out: dict[str, Any] = {}
    if checkpoint is not None:
        from gan_probe.checkpoint import resolve_checkpoint

        ckpt = resolve_checkpoint(checkpoint)
        out.update(checkpoint=str(ckpt), run_dir=str(run_dir_of(ckpt)))
    out.update({k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in inputs.items()})
    return out


def command_line(command: str, *arguments: Any, **options: Any) -> list[str]:
    """``["gan-probe", command, *arguments, --option value, ...]``: an option named ``a_b`` is
    ``--a-b``; ``None`` and ``False`` are left out, ``True`` is a bare flag, a list or tuple is
    comma-joined."""
    argv = [PROGRAM, command, *(str(a) for a in arguments)]
    for a in arguments:  # a model spec (gan_probe.models.sources.ModelSpec) carries how to run it
        options = {**getattr(a, "cli_options", dict)(), **options}
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def changed(options: dict[str, Any], function: Callable) -> dict[str, Any]:
    """The ``options`` whose value differs from ``function``'s default for that parameter (those
    without a default are kept): the options a reproducing command line needs."""
    import inspect

    params = inspect.signature(function).parameters
    return {k: v for k, v in options.items()
            if k not in params or params[k].default is inspect.Parameter.empty or params[k].default != v}


def new_summary(analysis: str, results: dict, *, command: str | None = None, argv: list[str],
                settings: dict, provenance: dict, seed: int | None, files: dict | None = None,
                paper_figure: str | None = None, captions: dict | None = None) -> dict:
    """One summary: the contract's keys, then ``results``. A result may repeat a contract key only
    with the same value (the analysis's older summaries had some of them among their results)."""
    meta: dict[str, Any] = {"analysis": analysis, "command": command or analysis, "argv": list(argv)}
    if paper_figure is not None:
        meta["paper_figure"] = paper_figure
    meta.update(settings=settings, provenance=provenance, seed=seed, versions=versions())
    if files is not None:
        meta["files"] = files
    if captions is not None:
        meta["captions"] = captions
    clash = [k for k in results if k in meta and results[k] != meta[k]]
    if clash:
        raise ValueError(f"results of {analysis} redefine contract keys: {', '.join(clash)}")
    return {**meta, **{k: v for k, v in results.items() if k not in meta}}


def check_summary(summary: Any) -> None:
    """Raise ``ValueError`` unless ``summary`` holds every contract key with its type."""
    if not isinstance(summary, dict):
        raise ValueError("a summary is a JSON object")
    bad = [k for k, types in REQUIRED.items()
           if k not in summary or not isinstance(summary[k], types) or isinstance(summary[k], bool)]
    if bad:
        raise ValueError(f"summary of {summary.get('analysis', '?')} lacks or mistypes: {', '.join(bad)}")


# ---------------------------------------------------------------- how: written
def dumps(data: Any) -> str:
    """The one JSON style of gan-probe's records: two-space indent, a final newline."""
    return json.dumps(data, indent=2) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as :func:`dumps` text, written atomically (a crash leaves the old file or none)."""
    from gan_probe.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, dumps(data))
    return path


def write_summary(out_dir: str | os.PathLike, summary: dict) -> Path:
    """Check ``summary`` (:func:`check_summary`) and write ``out_dir/summary.json`` atomically."""
    check_summary(summary)
    return write_json(Path(out_dir) / SUMMARY_FILE, summary)


# ---------------------------------------------------------------- how: read
def read_summary(folder: str | os.PathLike) -> tuple[dict | None, str]:
    """(the folder's summary, "") or (None, a one-line problem). Any JSON object is accepted:
    summaries written before this contract lack some of its keys."""
    p = Path(folder) / SUMMARY_FILE
    if not p.is_file():
        return None, f"no {SUMMARY_FILE}"
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"{SUMMARY_FILE} unreadable ({type(e).__name__})"
    return (d, "") if isinstance(d, dict) else (None, f"{SUMMARY_FILE} is not a JSON object")


def results_of(summary: dict) -> dict:
    """The analysis's results: every key the contract does not define."""
    return {k: v for k, v in summary.items() if k not in META_KEYS}


def command_line_of(summary: dict) -> str | None:
    """The command line that made ``summary`` (``argv``, or an older summary's whole-line
    ``command``), or None when it does not say."""
    argv = summary.get("argv")
    if isinstance(argv, list) and argv:
        return shlex.join(str(a) for a in argv)
    command = summary.get("command")
    if isinstance(command, str) and " " in command.strip():
        return command
    return None
