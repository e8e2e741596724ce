"""What resume needs from a results file, in one streaming pass: finished and failed ``cell_id`` and counts.

:func:`scan` reads ``results.jsonl`` in blocks of :data:`BLOCK_BYTES` (memory stays bounded by one
block plus the id sets, whatever the file's size) and gives the same answers as reading every
record (:meth:`bench.run.records.ResultsFile.load`): ``done`` is the ``cell_id`` of every ``ok`` or
``skipped`` record, ``failed`` those whose latest record is ``failed`` (``--retry-failed``).
:class:`ScanJob` runs that pass in a spawned process for a big file, so that a run plans meanwhile.

Parsing every line as JSON is what made resume slow (about 14 s per million records), so a line is
read the fast way when it is plain: ASCII, one JSON object, and its block holds exactly one
``"cell_id": "`` and one ``"status": "`` per line (so neither can be a nested key of another
field); then only the values of ``cell_id`` and ``status`` are cut out, and ``encoder`` and an
integer ``schema`` are checked to be there. Where the writer's sorted keys put them (``budget``
then ``cell_id`` first; ``schema``, ``seed``, ``status`` in a row) two anchored matches find them,
else a search does; the values of a block go into the sets together. Any other line (blank,
escaped quotes, a nested ``status``, a newer schema, a torn last line) goes through
:meth:`~bench.run.records.ResultsFile.parse`, with its checks and one-line errors; a JSON syntax
error inside an otherwise plain line is not looked for (``bench leaderboard`` reads every line).
"""

from __future__ import annotations

import multiprocessing
import re
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.run.records import MAX_LINE_BYTES, SCHEMA_VERSION, ResultsFile

#: Bytes read at a time (below :data:`~bench.run.records.MAX_LINE_BYTES`, so a line inside a block is never too long).
BLOCK_BYTES = 8 * 2**20
CELL_ID = b'"cell_id": "'
STATUS = b'"status": "'
ENCODER = b'"encoder": '
SCHEMA = b'"schema": '
#: a string value up to its closing quote (no escapes), and a JSON integer followed by the next key or the end
_STRING = re.compile(rb'([^"\\]*)"')
_INTEGER = re.compile(rb"(0|[1-9][0-9]*)[,}]")
FINISHED = ("ok", "skipped")
_FINISHED = frozenset(FINISHED)  # for a set test (a parsed status may be unhashable: FINISHED is a tuple)
#: the schema numbers the fast path reads (newer ones go to JSON, whose error names the line)
_SCHEMAS = frozenset(str(n).encode() for n in range(SCHEMA_VERSION + 1))
#: where sorted keys put them: the first two keys, and schema, seed, status in a row
_HEAD = re.compile(rb'\{"budget": "[^"\\]*", "cell_id": "([^"\\]*)"')
_TAIL = re.compile(rb'"schema": (0|[1-9][0-9]*), "seed": -?[0-9]+, "status": "([^"\\]*)"')


@dataclass
class Scan:
    """What :func:`scan` found: the resume sets and how many records (``statuses``) were read."""

    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    #: lines read as JSON because the fast path could not read them
    parsed: int = 0

    @property
    def records(self) -> int:
        return sum(self.statuses.values())

    def add(self, cell_id: Any, status: Any) -> None:
        """One record (latest last): a finished one joins ``done``, its ``failed`` state follows the latest."""
        self.statuses[str(status)] += 1
        if not cell_id:  # schema-1 records have no id: never done, never retried by id
            return
        key = str(cell_id)
        if status in FINISHED:
            self.done.add(key)
        if status == "failed":
            self.failed.add(key)
        else:
            self.failed.discard(key)

    def add_parsed(self, results: ResultsFile, lineno: int, raw: bytes | bytearray, complete: bool = True) -> None:
        if len(raw) > MAX_LINE_BYTES:
            raise results.too_long(lineno)
        rec = results.parse(lineno, raw, complete)
        if rec is not None:
            self.parsed += 1
            self.add(rec.get("cell_id"), rec.get("status"))

    def add_many(self, cell_ids: list[str], statuses: list[str]) -> None:
        """:meth:`add` of each ``(cell_ids[i], statuses[i])`` in order, done with whole sets at a time."""
        self.statuses.update(statuses)
        if _FINISHED.issuperset(statuses):
            self.done.update(cell_ids)
            self.failed.difference_update(cell_ids)
        else:
            self.done.update(c for c, s in zip(cell_ids, statuses) if s in _FINISHED)
            last = dict(zip(cell_ids, statuses))  # a cell's latest state in this run of records
            self.failed.difference_update(c for c, s in last.items() if s != "failed")
            self.failed.update(c for c, s in last.items() if s == "failed")
        self.done.discard("")  # an empty id is no id (:meth:`add`)
        self.failed.discard("")

    def add_block(self, results: ResultsFile, data: bytes, start: int, end: int, lineno: int) -> int:
        """The lines of ``data[start:end]`` (whole lines, after line ``lineno``); returns the last line's number."""
        if not data.isascii():
            return self.add_lines(results, data, start, end, lineno)
        keys = data.count(CELL_ID, start, end)
        if keys != data.count(STATUS, start, end):  # not one of each per line
            return self.add_lines(results, data, start, end, lineno)
        ids: list[bytes] = []
        states: list[bytes] = []
        odd: list[tuple[int, int, int, int]] = []  # (fast lines before it, lineno, start, end): lines to parse
        head, tail, index, find, rfind = _HEAD.match, _TAIL.match, data.index, data.find, data.rfind
        first, pos = lineno, start
        while pos < end:
            nl = index(b"\n", pos)
            lineno += 1
            k = rfind(SCHEMA, pos, nl)
            h = head(data, pos, nl)
            t = tail(data, k, nl) if h is not None and k >= 0 else None
            if t is not None:  # the writer's layout (sorted keys): both keys sit where it puts them
                cid, st, schema = h.group(1), t.group(2), t.group(1)  # type: ignore[union-attr]
            else:
                found = _find_keys(data, pos, nl)
                if found is None:  # a line without one key, so another has two: the counts cannot be trusted
                    return self.add_lines(results, data, start, end, first)
                cid, st, schema = found
            if cid is None or st is None or schema not in _SCHEMAS or data[nl - 1] != 0x7D or find(
                    ENCODER, pos, nl) < 0:
                odd.append((len(ids), lineno, pos, nl + 1))
            else:
                ids.append(cid)
                states.append(st)
            pos = nl + 1
        if lineno - first != keys:  # some line holds two of a key and another none
            return self.add_lines(results, data, start, end, first)
        cell_ids = b"\n".join(ids).decode().split("\n") if ids else []  # one decode per block, not per line
        statuses = b"\n".join(states).decode().split("\n") if states else []
        at = 0
        for before, line, a, b in odd:  # in file order: a parsed line may retry or fail a cell read before it
            self.add_many(cell_ids[at:before], statuses[at:before])
            self.add_parsed(results, line, data[a:b])
            at = before
        self.add_many(cell_ids[at:], statuses[at:])
        return lineno

    def add_lines(self, results: ResultsFile, data: bytes, start: int, end: int, lineno: int) -> int:
        """Every line of ``data[start:end]`` parsed as JSON (after line ``lineno``); returns the last line's number."""
        while start < end:
            nl = data.index(b"\n", start)
            lineno += 1
            self.add_parsed(results, lineno, data[start:nl + 1])
            start = nl + 1
        return lineno


def _find_keys(data: bytes, pos: int, nl: int) -> tuple[bytes | None, bytes | None, bytes | None] | None:
    """(cell_id, status, schema) of the line ``data[pos:nl]`` in any key order, None where a value is not
    plain (or the line is not an object); None if the line lacks ``cell_id`` or ``status``."""
    c = data.find(CELL_ID, pos, nl)
    s = data.rfind(STATUS, pos, nl)
    if c < 0 or s < 0:
        return None
    k = data.rfind(SCHEMA, pos, s)  # just before status in sorted order
    k = k if k >= 0 else data.find(SCHEMA, s, nl)
    cid = _STRING.match(data, c + len(CELL_ID), nl)
    st = _STRING.match(data, s + len(STATUS), nl)
    schema = _INTEGER.match(data, k + len(SCHEMA), nl) if k >= 0 else None
    return (cid.group(1) if cid is not None and data[pos] == 0x7B else None, st.group(1) if st is not None else None,
            schema.group(1) if schema is not None else None)


def scan(path: Path | str) -> Scan:
    """The resume sets and counts of the records file ``path`` (an empty :class:`Scan` if it does not exist).

    Errors are those of :meth:`~bench.run.records.ResultsFile.load`, naming the file and line.
    """
    results = ResultsFile(Path(path))
    out = Scan()
    if not results.path.exists():
        return out
    lineno = 0
    carry = bytearray()  # the start of a line that the previous blocks cut (grows in place: no quadratic copies)
    with results.path.open("rb") as f:
        while block := f.read(BLOCK_BYTES):
            first = block.find(b"\n")
            if first < 0:
                carry += block
                if len(carry) > MAX_LINE_BYTES:
                    raise results.too_long(lineno + 1)
                continue
            lineno += 1
            out.add_parsed(results, lineno, carry + block[:first + 1])
            last = block.rfind(b"\n")
            lineno = out.add_block(results, block, first + 1, last + 1, lineno)
            carry = bytearray(block[last + 1:])
    if carry:
        out.add_parsed(results, lineno + 1, carry, complete=False)
    return out


#: A results file at least this big is scanned by :class:`ScanJob` in a spawned process, while the run
#: plans. Measured on the 2-core VM: a process's round trip (start, imports, reply) takes 0.27 s,
#: the time the scan here takes for 76-105 MiB (280-390 MB/s), so a smaller file is scanned at once
#: (BENCHMARKS.md, "the driver at cluster scale"); about 30,000 records of 3.3 kB.
BACKGROUND_BYTES = 96 * 2**20
_SEP = "\0"  # joins the ids sent back: one string crosses the pipe, not a million objects


class ScanJob:
    """:func:`scan` of ``path``, started now and collected by :meth:`result`.

    A file of at least :data:`BACKGROUND_BYTES` is scanned in a ``spawn`` process (safe with torch
    loaded and threads running) so that the caller plans meanwhile; a smaller one, or a missing one,
    is scanned at once in this process, as :func:`scan` does. Either way :meth:`result` gives the
    same :class:`Scan` and raises the same errors. Nothing writes the file while the job runs: the
    caller appends only after :meth:`result`. Use it as a context manager: leaving the block stops
    a scan that is still running.
    """

    def __init__(self, path: Path | str, background_bytes: int | None = None) -> None:
        self.path = Path(path)
        limit = BACKGROUND_BYTES if background_bytes is None else background_bytes
        self._found: Scan | None = None
        self._process: Any = None
        try:
            #: whether the scan runs in another process
            self.background = self.path.stat().st_size >= limit
        except OSError:  # missing (an empty scan) or unreadable (scan names the error)
            self.background = False
        if not self.background:
            self._found = scan(self.path)
            return
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_scan_to, args=(str(self.path), child), daemon=True, name="bench-resume-scan")
        try:
            process.start()
        except Exception:  # no process to be had (a daemonic caller, no resources): the same scan, here
            self._conn.close()
            self.background = False
            self._found = scan(self.path)
            return
        finally:
            child.close()  # the child holds the only writing end: a dead child reads as EOF, not a hang
        self._process = process

    def check(self) -> None:
        """Raise the scan's error now if it has already failed (returns at once either way)."""
        if self._found is None and self._conn.poll():
            self.result()

    def result(self) -> Scan:
        """The :class:`Scan` (waits for the process); its error if the file is bad."""
        if self._found is None:
            try:
                kind, value = self._conn.recv()
            except (EOFError, OSError):  # the process died (killed, out of memory): scan here instead
                kind, value = "ok", None
            self.close()
            if kind == "error":
                raise value
            self._found = scan(self.path) if value is None else _unpack(value)
        return self._found

    def close(self) -> None:
        """Stop the process if it still runs (the scan is dropped) and release it."""
        if self._process is None:
            return
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._process.close()
        self._conn.close()
        self._process = None

    def __enter__(self) -> ScanJob:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _scan_to(path: str, conn: Any) -> None:
    """In the spawned process: send ``("ok", packed scan)`` or ``("error", exception)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle: it stops this process
    try:
        message: tuple[str, Any] = ("ok", _pack(scan(path)))
    except Exception as exc:  # the caller raises it, as scan() in its own process would
        message = ("error", exc)
    try:
        conn.send(message)
    except Exception:  # an error that does not pickle: the caller scans again and raises it itself
        conn.send(("ok", None))
    conn.close()


def _pack(found: Scan) -> tuple[Any, Any, dict[str, int], int]:
    """The scan as few objects: each id set as one joined string (the set itself if an id holds the separator)."""
    def join(ids: set[str]) -> Any:
        text = _SEP.join(ids)
        return text if text.count(_SEP) == len(ids) - 1 else ids

    return join(found.done), join(found.failed), dict(found.statuses), found.parsed


def _unpack(packed: tuple[Any, Any, dict[str, int], int]) -> Scan:
    def split(ids: Any) -> set[str]:
        return ids if isinstance(ids, set) else set(ids.split(_SEP)) if ids else set()

    done, failed, statuses, parsed = packed
    return Scan(split(done), split(failed), Counter(statuses), parsed)
