"""One run folder (``--out``) as every mode writes it: held, repaired, read for what is done, appended to.

Grids and streams write ``DIR/results.jsonl``, few-shot episodes ``DIR/episodes.jsonl``; each
driver holds its folder with :meth:`RunFolder.hold`, which in order checks that the folder is
writable (:func:`bench.run.lock.check_writable`), takes the run lock (:class:`bench.run.lock.RunLock`:
a second run on the same folder refuses at once) and cuts a torn last line left by an interrupted
append (:meth:`bench.run.records.ResultsFile.drop_torn_tail`: that cell runs again). Then
:meth:`RunFolder.done_ids` is the resume set (``cell_id`` of finished cells, read in one streaming pass
by :func:`bench.run.scan.scan`; :meth:`RunFolder.start_scan` reads a big file in a process of its own
while the driver plans), and every record goes
through :meth:`RunFolder.finish` (appended at once, then passed to the ``bench_cell_finished``
observers) or :meth:`RunFolder.skip`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.run.lock import RunLock, check_writable
from bench.run.records import ResultsFile
from bench.run.scan import Scan, ScanJob, scan

RESULTS = "results.jsonl"


class RunFolder:
    """The records file ``name`` of run folder ``out``, written only while :meth:`hold` holds the folder."""

    def __init__(self, out: Path | str, plugins: Any, name: str = RESULTS,
                 log: Callable[[str], None] | None = None) -> None:
        self.out = Path(out)
        self.plugins = plugins
        self.results = ResultsFile(self.out / name)
        self.log = log or (lambda msg: print(msg, file=sys.stderr))

    @contextlib.contextmanager
    def hold(self) -> Iterator[RunFolder]:
        """Writable check, lock, torn-tail repair; the lock is released when the block ends."""
        check_writable(self.out)
        with RunLock(self.out):
            self.results.drop_torn_tail(self.log)
            yield self

    def scan(self) -> Scan:
        """The records file's finished and failed ``cell_id`` and counts (also validates it)."""
        return scan(self.results.path)

    def start_scan(self) -> ScanJob:
        """:meth:`scan`, in a process of its own when the file is big (:class:`bench.run.scan.ScanJob`)."""
        return ScanJob(self.results.path)

    def done_ids(self) -> set[str]:
        """``cell_id`` of every finished cell (also validates the records file)."""
        return self.scan().done

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` (on disk before this returns), then tell the observers; returns it."""
        self.results.append(record)
        self.plugins.notify_cell_finished(record)
        return record

    def skip(self, record: dict[str, Any], reason: str, **extra: Any) -> dict[str, Any]:
        """:meth:`finish` ``record`` as ``skipped`` with ``reason`` as its error (and ``extra`` fields)."""
        record.update(status="skipped", error=reason, **extra)
        return self.finish(record)
