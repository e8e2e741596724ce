"""The streaming scan resume uses (bench.run.scan) gives exactly what reading every record gives."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import bench.run.scan as scan_module
from bench.errors import UserError
from bench.run.records import ResultsFile, latest
from bench.run.scan import scan


def _record(cell_id, status, **extra):
    rec = {"schema": 2, "cell_id": cell_id, "encoder": "pixels", "strategy": "knn", "task": "digits",
           "budget": "1/class", "seed": 0, "config_id": "default", "status": status, "error": None,
           "metrics": {"accuracy": 0.5}, "config_summary": {"encoder": "pixels", "option.k": 20},
           "task_info": {"split": "fixed"}, "versions": {"python": "3.11"}}
    return {**rec, **extra}


def _line(rec, **dumps):
    return json.dumps(rec, sort_keys=dumps.pop("sort_keys", True), **dumps) + "\n"


def _reference(path):
    results = ResultsFile(path)
    records = results.load()
    failed = {str(r["cell_id"]) for r in latest(records) if r.get("status") == "failed" and r.get("cell_id")}
    return results.done_ids(), failed, Counter(str(r.get("status")) for r in records)


#: every kind of line a results file can hold: plain ones (the fast path) and the ones it must leave to JSON
MIXED = "".join([
    _line(_record("a" * 16, "ok")),
    _line(_record("b" * 16, "failed", error="boom")),
    _line(_record("c" * 16, "skipped", error="pixels has no trainable parameters")),
    _line(_record("b" * 16, "ok")),  # a retried failed cell: done, and no longer failed
    _line(_record("d" * 16, "failed")),
    _line(_record("e" * 16, "ok")),
    _line(_record("e" * 16, "failed")),  # done once, then failed: stays done, and is the latest failure
    "\n",  # a blank line
    _line({k: v for k, v in _record(None, "ok").items() if k != "cell_id"} | {"schema": 1}),  # schema 1: no id
    _line(_record("", "ok")),  # an empty id counts as none
    _line(_record("f" * 16, "ok"), sort_keys=False),  # another writer's key order
    _line(_record("g" * 16, "ok", config={"status": "failed"})),  # a nested status key
    _line(_record('h"quoted', "ok")),  # an escaped quote in a value
    _line(_record(12345, "ok")),  # a number as id
    _line(_record("i" * 16, "ok", error="café"), ensure_ascii=False),  # not ASCII
    _line(_record("j" * 16, "ok"), separators=(",", ":")),  # compact separators
    _line(_record("k" * 16, "weird")),  # an unknown status: neither done nor failed
    _line({k: v for k, v in _record("l" * 16, "ok").items() if k != "schema"}),  # no schema: schema 0
])
#: a whole last object without its newline (a record: only a line that is not JSON is a torn one)
LAST = _line(_record("m" * 16, "ok")).rstrip("\n")


@pytest.mark.parametrize("block", [64, 333, 4096, scan_module.BLOCK_BYTES])
def test_scan_matches_reading_every_record(tmp_path, monkeypatch, block):
    path = tmp_path / "results.jsonl"
    path.write_text(MIXED * 3 + LAST)
    monkeypatch.setattr(scan_module, "BLOCK_BYTES", block)
    done, failed, statuses = _reference(path)
    found = scan(path)
    assert found.done == done == {"a" * 16, "b" * 16, "c" * 16, "e" * 16, "f" * 16, "g" * 16, 'h"quoted', "12345",
                                  "i" * 16, "j" * 16, "l" * 16, "m" * 16}
    assert found.failed == failed == {"d" * 16, "e" * 16}
    assert found.statuses == statuses
    assert found.records == 3 * 17 + 1


def test_plain_records_take_the_fast_path(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(_line(_record(f"{i:016x}", "ok" if i % 3 else "failed")) for i in range(5000)))
    found = scan(path)
    assert found.records == 5000 and found.statuses == Counter({"ok": 3333, "failed": 1667})
    assert found.done == {f"{i:016x}" for i in range(5000) if i % 3}
    assert found.parsed <= 2  # the first line only, which the reader always parses (plus one per block)


def test_a_torn_last_line_is_left_out_with_a_warning(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    path.write_text(_line(_record("a" * 16, "ok")) + '{"schema": 2, "cell_id": "bbbb", "enc')
    found = scan(path)
    assert (found.done, found.records) == ({"a" * 16}, 1)
    assert "results.jsonl:2: torn last line" in capsys.readouterr().err


def test_a_missing_file_is_an_empty_scan(tmp_path):
    found = scan(tmp_path / "results.jsonl")
    assert (found.done, found.failed, found.records) == (set(), set(), 0)


@pytest.mark.parametrize("data, message", [
    (b'["a", "list"]\n', r"results.jsonl:3 is not a transfer-bench record"),
    (b'{"some": "other tool"}\n', r"results.jsonl:3 is not a transfer-bench record"),
    (b'{"schema": 99, "encoder": "e", "status": "ok"}\n', r"results.jsonl:3 has record schema 99, newer than this"),
    (b'{"schema": "2", "encoder": "e", "status": "ok"}\n', r"has a record schema '2' that is not a number"),
    (b'{"encoder": "\xff\xfe", "status": "ok"}\n', r"results.jsonl:3 is not valid JSONL \(not UTF-8\)"),
    (b'{"broken\n', r"results.jsonl:3 is not valid JSONL"),
    (b'{"x": "' + b"a" * (17 * 2**20) + b'"}\n', r"results.jsonl:3 is longer than 16 MiB"),
    (b'{"x": "' + b"a" * (17 * 2**20), r"results.jsonl:3 is longer than 16 MiB"),  # torn, and too long
    (_line(_record("z" * 16, "ok", schema=3)).encode(), r"results.jsonl:3 has record schema 3, newer"),
])
@pytest.mark.parametrize("block", [50, scan_module.BLOCK_BYTES])
def test_foreign_lines_are_the_same_one_line_errors(tmp_path, monkeypatch, data, message, block):
    path = tmp_path / "results.jsonl"
    good = _line(_record("a" * 16, "ok")).encode()
    path.write_bytes(good * 2 + data + good)
    monkeypatch.setattr(scan_module, "BLOCK_BYTES", block)
    with pytest.raises(UserError, match=message) as err:
        scan(path)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=message):
        ResultsFile(path).load()


def test_the_run_folder_resumes_from_the_scan(tmp_path):
    from bench.run.folder import RunFolder

    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text(MIXED + LAST)
    folder = RunFolder(out, plugins=None)
    assert folder.done_ids() == ResultsFile(Path(out / "results.jsonl")).done_ids()
    assert folder.scan().failed == {"d" * 16, "e" * 16}


def test_lines_the_fast_path_cannot_read_go_through_json(tmp_path):
    """In a block whose lines each hold one ``cell_id`` and one ``status`` key, a line with another
    key order is still read fast; one with no schema or an escaped quote is parsed as JSON."""
    path = tmp_path / "results.jsonl"
    plain = [_line(_record(f"{i:016x}", "ok")) for i in range(4)]
    odd = [_line(_record("f" * 16, "failed"), sort_keys=False),  # fast: status before schema
           _line({k: v for k, v in _record("l" * 16, "ok").items() if k != "schema"}),  # parsed: no schema
           _line(_record('h"quoted', "ok")),  # parsed: an escape in the id
           _line(_record("s" * 16, "ok", seed=1, error='a "quoted" error'))]  # fast: escapes elsewhere
    path.write_text("".join(plain[:2] + odd + plain[2:]))
    done, failed, statuses = _reference(path)
    found = scan(path)
    assert (found.done, found.failed, found.statuses) == (done, failed, statuses)
    assert found.failed == {"f" * 16} and 'h"quoted' in found.done
    assert found.parsed == 1 + 2  # the first line (the reader's block boundary) and the two odd ones


def test_a_block_at_a_time_gives_what_one_record_at_a_time_gives():
    """Scan.add_many (the fast path's) against Scan.add in order: retries, failures, empty ids, repeats."""
    import random

    rng = random.Random(0)
    for _ in range(200):
        pairs = [(rng.choice(["a", "b", "c", ""]), rng.choice(["ok", "skipped", "failed", "weird"]))
                 for _ in range(rng.randint(0, 12))]
        cut = rng.randint(0, len(pairs))
        one, many = scan_module.Scan(failed={"a"}), scan_module.Scan(failed={"a"})
        for cell_id, status in pairs:
            one.add(cell_id, status)
        for part in (pairs[:cut], pairs[cut:]):
            many.add_many([c for c, _ in part], [s for _, s in part])
        assert (many.done, many.failed, many.statuses) == (one.done, one.failed, one.statuses), pairs


@pytest.mark.parametrize("last", ["ok", "failed"])
def test_a_parsed_line_between_fast_ones_keeps_the_order_of_a_cells_records(tmp_path, last):
    no_schema = {k: v for k, v in _record("a" * 16, "ok").items() if k != "schema"}  # parsed as JSON
    lines = [_line(_record("a" * 16, "failed")), _line(no_schema), _line(_record("a" * 16, last)),
             _line(no_schema | {"status": "failed"})]
    path = tmp_path / "results.jsonl"
    path.write_text(_line(_record("z" * 16, "ok")) + "".join(lines[:3] if last == "failed" else lines))
    found = scan(path)
    assert found.parsed == (2 if last == "failed" else 3)  # the first line, and the lines without a schema
    assert (found.done, found.failed) == ({"z" * 16, "a" * 16}, {"a" * 16})
    assert (found.done, found.failed, found.statuses) == _reference(path)


TORN = '{"schema": 2, "cell_id": "bbbb", "enc'  # an interrupted append
PLAIN = 30_000  # records of about 400 bytes: more than one block, the first read fast


def _mixed_file(path, extra=""):
    plain = [_line(_record(f"{i:016x}", ("ok", "failed", "skipped")[i % 3])) for i in range(PLAIN)]
    path.write_text("".join(plain + [MIXED * 2, extra] + plain[:100] + [TORN]))
    return path


@pytest.mark.parametrize("extra", ["", _line(_record("x\0y", "ok"))])  # an id holding the separator of the packing
def test_the_scan_in_a_process_gives_the_sets_of_the_scan_here(tmp_path, capfd, extra):
    """ok, failed and skipped records, a retried cell, foreign lines, and a torn last line."""
    path = _mixed_file(tmp_path / "results.jsonl", extra)
    here = scan(path)
    with scan_module.ScanJob(path, background_bytes=0) as job:
        assert job.background
        found = job.result()
    assert (found.done, found.failed, found.statuses, found.parsed) == (here.done, here.failed, here.statuses,
                                                                        here.parsed)
    assert found.failed == {f"{i:016x}" for i in range(PLAIN) if i % 3 == 1} | {"d" * 16, "e" * 16}
    assert len(found.done) == PLAIN * 2 // 3 + 11 + bool(extra)
    assert found.records == PLAIN + 2 * 17 + bool(extra) + 100  # the torn line left out
    assert 0 < found.parsed < 10_000  # the first block was read fast, in the process too
    assert capfd.readouterr().err.count("torn last line") == 2  # here, and in the process


def test_small_files_are_scanned_here_at_once_and_big_ones_in_a_process(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    path.write_text(MIXED)
    size = path.stat().st_size
    assert scan_module.BACKGROUND_BYTES > 1000 * size  # a results file of hundreds of records never starts one

    def no_process(method):
        raise AssertionError(f"a process was started ({method}) for a {size}-byte file")

    with monkeypatch.context() as m:
        m.setattr(scan_module.multiprocessing, "get_context", no_process)
        job = scan_module.ScanJob(path)
        assert not job.background
        path.write_text("")  # the scan was done when the job started, as the runner's scan always was
        assert job.result().done == {"a" * 16, "b" * 16, "c" * 16, "e" * 16, "f" * 16, "g" * 16, 'h"quoted',
                                     "12345", "i" * 16, "j" * 16, "l" * 16}
        assert not scan_module.ScanJob(tmp_path / "missing.jsonl").background
    path.write_text(MIXED)
    monkeypatch.setattr(scan_module, "BACKGROUND_BYTES", size + 1)
    assert not scan_module.ScanJob(path).background
    monkeypatch.setattr(scan_module, "BACKGROUND_BYTES", size)
    with scan_module.ScanJob(path) as job:
        assert job.background and job.result().failed == {"d" * 16, "e" * 16}


def test_a_bad_file_fails_with_the_same_one_line_error_from_the_process(tmp_path):
    path = tmp_path / "results.jsonl"
    good = _line(_record("a" * 16, "ok")).encode()
    path.write_bytes(good * 2 + b'{"schema": 99, "encoder": "e", "status": "ok"}\n' + good)
    with scan_module.ScanJob(path, background_bytes=0) as job:
        job._process.join(60)  # it has failed by now: check() raises without waiting
        with pytest.raises(UserError, match=r"results.jsonl:3 has record schema 99, newer than this") as err:
            job.check()
    assert "\n" not in str(err.value) and type(err.value) is UserError
    with scan_module.ScanJob(tmp_path / "dir", background_bytes=0) as job:  # a missing file: scanned here
        assert not job.background and job.result().records == 0


def test_a_scan_process_that_dies_is_replaced_by_a_scan_here(tmp_path):
    path = _mixed_file(tmp_path / "results.jsonl")
    with scan_module.ScanJob(path, background_bytes=0) as job:
        job._process.kill()
        job._process.join()
        found = job.result()
    assert (found.done, found.failed) == (scan(path).done, scan(path).failed)


def test_leaving_the_block_stops_the_scan_and_leaves_the_file_as_it_was(tmp_path):
    import os

    path = _mixed_file(tmp_path / "results.jsonl")
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with scan_module.ScanJob(path, background_bytes=0) as job:
            pid = job._process.pid
            raise KeyboardInterrupt
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
    assert path.read_bytes() == before


def test_where_no_process_can_start_the_scan_runs_here(tmp_path, monkeypatch):
    path = _mixed_file(tmp_path / "results.jsonl")
    real = scan_module.multiprocessing.get_context

    class NoStart:
        def Pipe(self, duplex):  # multiprocessing's names
            return real("spawn").Pipe(duplex=duplex)

        def Process(self, **kwargs):
            process = real("spawn").Process(**kwargs)
            process.start = lambda: (_ for _ in ()).throw(AssertionError("daemonic processes cannot have children"))
            return process

    monkeypatch.setattr(scan_module.multiprocessing, "get_context", lambda method: NoStart())
    with scan_module.ScanJob(path, background_bytes=0) as job:
        assert not job.background
        assert (job.result().done, job.result().failed) == (scan(path).done, scan(path).failed)
