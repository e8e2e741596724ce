"""One ``bench run`` per run folder: a lock on ``--out`` that a second run meets at once.

Two runs on the same folder would both run every pending cell (each sees the other's cells as
not yet finished) and append the same cells twice. So :class:`RunLock` takes an exclusive,
non-blocking OS lock (``filelock``: ``flock`` on POSIX) on ``DIR/.bench-run.lock`` for the whole
run, and writes who holds it (pid, host, start time) to ``DIR/.bench-run.holder``. A second run
refuses at once with one line naming the holder. The OS drops the lock when its holder dies (a
``SIGKILL`` included), so a killed run never blocks the next one: its holder file is overwritten.

Limit: ``flock`` locks are not reliable on every network file system (old NFS); run one driver
per folder there.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from bench.errors import UserError

LOCK_NAME = ".bench-run.lock"
HOLDER_NAME = ".bench-run.holder"


class RunLock:
    """``with RunLock(out):`` holds ``out`` for this process, or raises :class:`UserError` at once."""

    def __init__(self, out: Path) -> None:
        import filelock

        self.out = Path(out)
        self._lock = filelock.FileLock(str(self.out / LOCK_NAME), timeout=0)

    def holder(self) -> str:
        """Who holds the folder, as written by the holder (``"unknown"`` if it cannot be read)."""
        try:
            h = json.loads((self.out / HOLDER_NAME).read_text())
            return f"pid {int(h['pid'])} on {str(h['host'])!r}, started {str(h['started'])}"
        except (OSError, ValueError, KeyError, TypeError):
            return "unknown"

    def __enter__(self) -> RunLock:
        import filelock

        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise UserError(f"output folder {str(self.out)!r} is in use by another bench run ({self.holder()}); "
                            "wait for it to finish, or pass another --out") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = self.out / f"{HOLDER_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, self.out / HOLDER_NAME)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            (self.out / HOLDER_NAME).unlink()
        except OSError:
            pass
        self._lock.release()


def check_writable(out: Path) -> None:
    """Create ``out`` if needed and prove a file can be written there, else one UserError."""
    probe = out / ".write-test"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"output folder {str(out)!r} is not writable ({exc.strerror}); pass a writable --out") from None
