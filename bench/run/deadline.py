"""``--cell-timeout``: a per-cell time limit, raised in the thread that runs the cell.

The limit travels with the cell group's run config (so worker processes and cluster jobs get it
too); :func:`bench.run.cell.evaluate_cell` runs each cell under :func:`deadline` and
records a cell that runs past it as ``failed`` with reason ``timeout``; the grid goes on.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator
from typing import Any


class CellTimeout(BaseException):
    """A cell ran past ``--cell-timeout``. A BaseException, so a strategy's ``except Exception``
    cannot swallow it."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CellTimeout` in this thread after ``seconds`` (``SIGALRM``).

    Limits: it works in a process's main thread on POSIX (where the local executor and process
    pools run cells); elsewhere (a worker thread, Windows) the limit is not enforced and a warning
    says so. The signal is handled between Python bytecodes, so a single long C call (one huge
    matrix product) finishes before the cell stops; the cell's memory is freed as usual.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds is None or not usable:
        if seconds is not None:
            warnings.warn("--cell-timeout is enforced only in a process's main thread on POSIX; "
                          "this cell runs without a limit", RuntimeWarning, stacklevel=3)
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CellTimeout(f"cell ran past --cell-timeout {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
