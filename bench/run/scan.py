"""What resume needs from a results file, in one streaming pass: finished and failed ``cell_id`` and counts.

:func:`scan` reads ``results.jsonl`` in blocks of :data:`BLOCK_BYTES` (memory stays bounded by one
block plus the id sets, whatever the file's size) and gives the same answers as reading every
record (:meth:`bench.run.records.ResultsFile.load`): ``done`` is the ``cell_id`` of every ``ok`` or
``skipped`` record, ``failed`` those whose latest record is ``failed`` (``--retry-failed``).

Parsing every line as JSON is what made resume slow (about 14 s per million records), so a line is
read the fast way when it is plain: ASCII, one JSON object, and its block holds exactly one
``"cell_id": "`` and one ``"status": "`` per line (so neither can be a nested key of another
field); then only the values of ``cell_id`` and ``status`` are cut out, and ``encoder`` and an
integer ``schema`` are checked to be there. Any other line (blank, escaped quotes, another
layout, a nested ``status``, a newer schema, a torn last line) goes through
:meth:`~bench.run.records.ResultsFile.parse`, with its checks and one-line errors; a JSON syntax
error inside an otherwise plain line is not looked for (``bench leaderboard`` reads every line).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
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

    def add_block(self, results: ResultsFile, data: bytes, start: int, end: int, lineno: int) -> int:
        """The lines of ``data[start:end]`` (whole lines, after line ``lineno``); returns the last line's number."""
        n = data.count(b"\n", start, end)
        if not (data.isascii() and data.count(CELL_ID, start, end) == n and data.count(STATUS, start, end) == n):
            return self.add_lines(results, data, start, end, lineno)
        found: list[tuple[Any, ...]] = []  # (cell_id, status) read fast, or (lineno, start, end) to parse
        match_string, match_integer = _STRING.match, _INTEGER.match
        pos = start
        for _ in range(n):
            nl = data.index(b"\n", pos)
            lineno += 1
            c = data.find(CELL_ID, pos, nl)
            s = data.rfind(STATUS, pos, nl)  # from the end: status is among the last keys in sorted order
            if c < 0 or s < 0:  # a line without one, so another has two: the counts cannot be trusted
                return self.add_lines(results, data, start, end, lineno - len(found) - 1)
            k = data.rfind(SCHEMA, pos, s)  # just before status in sorted order
            k = k if k >= 0 else data.find(SCHEMA, s, nl)
            e = data.rfind(ENCODER, pos, k) if k >= 0 else -1  # a few fields before schema in sorted order
            e = e if e >= 0 else data.find(ENCODER, pos, nl)
            cid = match_string(data, c + len(CELL_ID), nl)
            st = match_string(data, s + len(STATUS), nl)
            schema = match_integer(data, k + len(SCHEMA), nl) if k >= 0 else None
            if (cid is None or st is None or schema is None or e < 0 or data[pos] != 0x7B or data[nl - 1] != 0x7D
                    or int(schema.group(1)) > SCHEMA_VERSION):
                found.append((lineno, pos, nl + 1))
            else:
                found.append((cid.group(1).decode(), st.group(1).decode()))
            pos = nl + 1
        add, add_parsed = self.add, self.add_parsed
        for item in found:
            if len(item) == 2:
                add(*item)
            else:
                add_parsed(results, item[0], data[item[1]:item[2]])
        return lineno

    def add_lines(self, results: ResultsFile, data: bytes, start: int, end: int, lineno: int) -> int:
        """Every line of ``data[start:end]`` parsed as JSON (after line ``lineno``); returns the last line's number."""
        while start < end:
            nl = data.index(b"\n", start)
            lineno += 1
            self.add_parsed(results, lineno, data[start:nl + 1])
            start = nl + 1
        return lineno


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
