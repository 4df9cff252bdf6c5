"""Preemption: a scheduler's SIGTERM / SIGUSR1 becomes a clean stop at a step boundary.

Within :func:`stop_signals`, SIGTERM and SIGUSR1 only raise a flag; the training loop checks it
after each step and between an evaluation's batches (an evaluation so abandoned is marked pending in
the checkpoint and redone first on resume), writes its checkpoint atomically and stops with
:class:`Preempted`, which the CLI
turns into exit code :data:`PREEMPTED_EXIT_CODE` (75, ``EX_TEMPFAIL``: "try again later"). The
same command with ``--resume`` continues where it stopped, so a scheduler's requeue just works.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from typing import Iterator

PREEMPTED_EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL; distinct from 1 (user error), 2 (usage), 130 (Ctrl-C)
STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s)


class Preempted(Exception):
    """Training stopped on a signal after writing its checkpoint at ``step``."""

    def __init__(self, signal_name: str, step: int, checkpoint: str):
        super().__init__(f"stopped by {signal_name} at step {step}; checkpoint written to {checkpoint}; "
                         f"run the same command with --resume to continue")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint


@dataclass
class StopFlag:
    signal_name: str | None = None  # the first stop signal received

    def __bool__(self) -> bool:
        return self.signal_name is not None


@contextlib.contextmanager
def stop_signals(signals: tuple = STOP_SIGNALS) -> Iterator[StopFlag]:
    """A flag raised by ``signals`` while the block runs; the previous handlers come back after it.
    Outside the main thread (where Python cannot install handlers) the flag is never raised."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, _frame):
        if flag.signal_name is None:
            flag.signal_name = signal.Signals(signum).name

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
