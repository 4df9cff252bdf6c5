"""One progress bar for every long loop: transient, on stderr (stdout stays clean for --json)."""

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
