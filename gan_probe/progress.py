"""Progress bars: one for every long loop (on stderr: stdout stays clean for --json), and training's,
which keeps the last diagnostics on screen.

On a terminal :func:`progress_bar` draws a transient rich bar. Anywhere else (a pipe, a log file, the
subprocesses of ``gan-probe report --run-missing``) a bar cannot redraw, so it prints a plain line every
``LINE_EVERY_S`` seconds instead (``Inception: digits:train  400/1347 (30%), 0:21 elapsed, about 0:50
left``) and one when the loop ends, if it printed any: a short loop prints nothing."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator, TextIO

LINE_EVERY_S = 10.0  # seconds between two progress lines when stderr is not a terminal


def clock(seconds: float) -> str:
    """``seconds`` as ``M:SS`` (``H:MM:SS`` from an hour)."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def progress_line(description: str, done: int, total: int | None, elapsed: float, unit: str = "items") -> str:
    """One line of progress: done / total (percent), elapsed time, and the time left at the rate so far."""
    if unit == "bytes":
        count = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
    else:
        count = f"{done}/{total}" if total else f"{done}"
    line = f"{description}  {count}"
    if total:
        line += f" ({100 * done / total:.0f}%)"
    line += f", {clock(elapsed)} elapsed"
    if total and 0 < done < total and elapsed > 0:
        line += f", about {clock(elapsed * (total - done) / done)} left"
    return line


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, show: bool = True, *, unit: str = "items",
                 every: float | None = None, stream: TextIO | None = None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``. ``unit``: ``"items"`` (done / total, time left) or ``"bytes"``
    (size and transfer speed); ``show=False`` yields a no-op and draws nothing. ``stream``: where to
    write (default stderr); when it is not a terminal, a line every ``every`` seconds (default
    ``LINE_EVERY_S``) replaces the bar."""
    if not show:
        yield lambda n: None
        return
    stream = stream if stream is not None else sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        with _line_progress(total, description, unit, LINE_EVERY_S if every is None else every, stream) as advance:
            yield advance
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    columns = ((DownloadColumn(), TransferSpeedColumn()) if unit == "bytes"
               else (MofNCompleteColumn(), TimeRemainingColumn()))
    with Progress(TextColumn("{task.description}"), BarColumn(), *columns, transient=True,
                  console=Console(file=stream)) as bar:
        task = bar.add_task(description, total=total or None)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def _line_progress(total: int | None, description: str, unit: str, every: float,
                   stream: TextIO) -> Iterator[Callable[[int], None]]:
    start = time.monotonic()
    state = {"done": 0, "last": start, "printed": False}

    def write() -> None:
        stream.write(progress_line(description, state["done"], total, time.monotonic() - start, unit) + "\n")
        stream.flush()
        state["printed"] = True

    def advance(n: int) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= every and not (total and state["done"] >= total):
            state["last"] = now
            write()

    yield advance
    if state["printed"]:
        write()


class TrainingBar:
    """Training's bar: steps done / total, time left and the DCGAN diagnostics of the last logged
    step. Unlike :func:`progress_bar` it stays on screen when done (the last losses are worth
    keeping); on stderr as well. ``show=False``: draws nothing and costs nothing. When ``stream``
    (default stderr) is not a terminal: a line every ``every`` seconds (default ``LINE_EVERY_S``) and
    one at the end, the time left measured over this session's steps (a resumed run's earlier
    steps took no time here)."""

    def __init__(self, total: int, done: int, show: bool = True, *, every: float | None = None,
                 stream: TextIO | None = None):
        self._bar = None
        self._lines = None
        if not show:
            return
        stream = stream if stream is not None else sys.stderr
        if not (hasattr(stream, "isatty") and stream.isatty()):
            now = time.monotonic()
            self._lines = {"stream": stream, "every": LINE_EVERY_S if every is None else every, "total": total,
                           "start": now, "first": done, "last": now, "step": done, "info": ""}
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             TextColumn("{task.fields[info]}"), transient=False, console=Console(file=stream))
        self._task = self._bar.add_task("train", total=total, completed=done, info="")
        self._bar.start()

    def update(self, step: int, s: dict | None = None) -> None:
        """``s``: a log.jsonl record (epoch, loss_d, loss_g, d_x, d_g_z1, d_g_z2, img_per_s); None: the
        step alone (the diagnostics shown stay those of the last logged step)."""
        if self._bar is None and self._lines is None:
            return
        info = None if s is None else (
            f"ep {s['epoch']:.2f} D {s['loss_d']:.3f} G {s['loss_g']:.3f} "
            f"D(x) {s['d_x']:.2f} D(G(z)) {s['d_g_z1']:.2f}/{s['d_g_z2']:.2f} {s['img_per_s']:.0f} img/s")
        if self._bar is not None:
            self._bar.update(self._task, completed=step, **({} if info is None else {"info": info}))
            return
        st = self._lines
        st["step"] = step
        if info is not None:
            st["info"] = info
        now = time.monotonic()
        if now - st["last"] >= st["every"] and step < st["total"]:
            st["last"] = now
            self._write_line(now)

    def _write_line(self, now: float) -> None:
        st = self._lines
        elapsed = now - st["start"]
        done, left = st["step"] - st["first"], st["total"] - st["step"]
        line = f"train  {st['step']}/{st['total']} ({100 * st['step'] / max(1, st['total']):.0f}%), " \
               f"{clock(elapsed)} elapsed"
        if done > 0 and left > 0:
            line += f", about {clock(elapsed * left / done)} left"
        st["stream"].write(line + (f"  {st['info']}" if st["info"] else "") + "\n")
        st["stream"].flush()

    def note(self, text: str) -> None:
        """A line of its own above the bar (or among the progress lines), kept on screen."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        elif self._lines is not None:
            self._lines["stream"].write(text + "\n")
            self._lines["stream"].flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._lines is not None:
            self._write_line(time.monotonic())
            self._lines = None
