"""Crash safety (issue 12): a toy grid killed with SIGKILL at random moments, resumed after each
kill, ends with exactly the records of an uninterrupted run; a torn last line of results.jsonl is
reported and dropped on resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.run.records import ResultsFile

KILLS = 20
GRID = ["--encoders", "toy-cnn", "--strategies", "toy-centroid", "--tasks", "toy-blobs",
        "--budgets", "1,2,3,4,5,6,7,8,9,10", "--seeds", "30", "--no-contamination", "--forgetting", "off",
        "--device", "cpu", "--no-progress", "--format", "csv"]


def toy_env(plugin_site: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(plugin_site), "BENCH_DISABLE_PLUGINS": "broken",
            "BENCH_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


#: Runs in its own process: imports torch and bench once, then forks a fresh ``bench run`` per
#: attempt (a real process, killed with SIGKILL) so that each restart costs milliseconds, not an
#: import of torch. Prints {"kills": n, "rc": exit status of the final, uninterrupted run}.
DRIVER = r"""
import json, os, random, signal, sys, time
import torch
torch.set_num_threads(1)
import bench.cli, bench.run.runner, bench.plugins
bench.plugins.load_plugins()
out, wanted, grid = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
results, rng = os.path.join(out, "results.jsonl"), random.Random(12)
size = lambda: os.path.getsize(results) if os.path.exists(results) else 0

def spawn():
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 1); os.dup2(fd, 2)
        try:
            rc = bench.cli.main(["run", *grid, "--out", out])
        except BaseException:
            rc = 1
        os._exit(rc)
    return pid

kills = 0
while kills < wanted:
    pid, before, t0 = spawn(), size(), time.monotonic()
    if rng.random() < 0.5:  # anywhere: start-up, manifests, feature cache, cells; but stop at the
        # first new record, so a fast machine cannot finish the grid before enough kills land
        deadline = t0 + rng.uniform(0.0, 0.4)
        while time.monotonic() < deadline and size() == before and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.002)
    else:  # while records are being appended
        while size() == before and os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() - t0 < 60:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.005))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        break
    done, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        kills += 1
    else:
        break  # the grid finished before the kill landed
_, status = os.waitpid(spawn(), 0)
print(json.dumps({"kills": kills, "rc": os.waitstatus_to_exitcode(status)}))
"""


def run_grid(out: Path, env: dict[str, str]) -> int:
    return subprocess.run([sys.executable, "-m", "bench", "run", *GRID, "--out", str(out)], env=env,
                          capture_output=True, text=True).returncode


def records(out: Path) -> list[dict]:
    """Every line of results.jsonl, parsed: a partial line fails the test here."""
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(tmp_path, plugin_site):
    """Guards against lost, duplicated or partial records after crashes (20 SIGKILLs at random
    moments: start-up, manifests, the feature cache, cells, appends). A kill inside an append is
    rare here; the torn-line test below covers it (old code glued the next record onto it)."""
    env = toy_env(plugin_site, tmp_path / "cache")
    reference = tmp_path / "reference"
    assert run_grid(reference, env) == 0
    expected = {r["cell_id"]: r["metrics"] for r in records(reference)}
    assert len(expected) == 300

    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(out), str(KILLS), json.dumps(GRID)], env=env,
                          capture_output=True, text=True, timeout=240)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"kills": KILLS, "rc": 0}, proc.stderr[-2000:]
    got = records(out)
    ids = [r["cell_id"] for r in got]
    assert len(ids) == len(set(ids)) == 300, "a cell was recorded twice or lost"
    assert {r["cell_id"]: r["metrics"] for r in got} == expected
    assert all(r["status"] == "ok" for r in got)


def test_a_torn_last_line_is_reported_and_dropped_on_resume(tmp_path, capsys):
    """Guards against appending after a torn line (old code: the next record was glued onto it,
    and every later load failed with 'not valid JSONL')."""
    path = tmp_path / "results.jsonl"
    good = {"schema": 2, "cell_id": "a" * 16, "encoder": "e", "status": "ok"}
    path.write_text(json.dumps(good) + "\n" + '{"schema": 2, "cell_id": "bbbb", "enc')
    results = ResultsFile(path)
    assert [r["cell_id"] for r in results.load()] == ["a" * 16]
    assert "torn last line" in capsys.readouterr().err
    assert results.drop_torn_tail() == len('{"schema": 2, "cell_id": "bbbb", "enc')
    results.append({**good, "cell_id": "c" * 16})
    assert [r["cell_id"] for r in results.load()] == ["a" * 16, "c" * 16]
    assert results.drop_torn_tail() == 0


def test_a_bad_line_in_the_middle_is_still_an_error_naming_the_line(tmp_path):
    """Only the last line may be torn; a broken complete line is someone else's file."""
    path = tmp_path / "results.jsonl"
    path.write_text('{"broken\n{"schema": 2, "encoder": "e", "status": "ok"}\n')
    with pytest.raises(UserError, match=r"results.jsonl:1 is not valid JSONL"):
        ResultsFile(path).load()


def test_manifest_writes_are_atomic(tmp_path):
    """A manifest is written to a temp file and renamed: the final path is never half-written."""
    import numpy as np

    from bench.run.budgets import Manifests, parse_budget
    from bench.tasks import ArraySplit, TaskData

    split = ArraySplit([f"i{k}" for k in range(12)], np.zeros((12, 2, 2), np.uint8), np.arange(12) % 3)
    task = TaskData(name="t", classes=["a", "b", "c"], train=split, test=split)
    m = Manifests(tmp_path)
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((str(src), str(dst)))
        assert json.loads(Path(src).read_text())["n"] == 6  # complete before it is renamed
        real_replace(src, dst)

    os.replace = spy
    try:
        m.positions(task, parse_budget("2"), 0)
    finally:
        os.replace = real_replace
    assert replaced and replaced[0][1].endswith("seed0.json") and replaced[0][0].endswith(".tmp")
