"""Progress bars: one for every long loop (transient, on stderr: stdout stays clean for --json),
and training's, which keeps the last diagnostics on screen."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, show: bool = True, *,
                 unit: str = "items") -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``. ``unit``: ``"items"`` (done / total, time left) or ``"bytes"``
    (size and transfer speed); ``show=False`` yields a no-op and draws nothing."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    columns = ((DownloadColumn(), TransferSpeedColumn()) if unit == "bytes"
               else (MofNCompleteColumn(), TimeRemainingColumn()))
    with Progress(TextColumn("{task.description}"), BarColumn(), *columns, transient=True,
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total or None)
        yield lambda n: bar.advance(task, n)


class TrainingBar:
    """Training's bar: steps done / total, time left and the DCGAN diagnostics of the last logged
    step. Unlike :func:`progress_bar` it stays on screen when done (the last losses are worth
    keeping); on stderr as well. ``show=False``: draws nothing and costs nothing."""

    def __init__(self, total: int, done: int, show: bool = True):
        self._bar = None
        if not show:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             TextColumn("{task.fields[info]}"), transient=False, console=Console(stderr=True))
        self._task = self._bar.add_task("train", total=total, completed=done, info="")
        self._bar.start()

    def update(self, step: int, s: dict) -> None:
        """``s``: a log.jsonl record (epoch, loss_d, loss_g, d_x, d_g_z1, d_g_z2, img_per_s)."""
        if self._bar is None:
            return
        info = (f"ep {s['epoch']:.2f} D {s['loss_d']:.3f} G {s['loss_g']:.3f} "
                f"D(x) {s['d_x']:.2f} D(G(z)) {s['d_g_z1']:.2f}/{s['d_g_z2']:.2f} {s['img_per_s']:.0f} img/s")
        self._bar.update(self._task, completed=step, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
