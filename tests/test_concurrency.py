"""Concurrency (issue 12): two ``bench run`` on one ``--out``; two processes on one feature cache."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bench.errors import UserError
from bench.run.lock import HOLDER_NAME, RunLock
from tests.reliability import misbehaving_plugin, toy_env

GRID = ["--encoders", "toy-cnn", "--strategies", "sleepy", "--tasks", "toy-blobs", "--budgets", "1,2",
        "--seeds", "3", "--no-contamination", "--forgetting", "off", "--device", "cpu", "--no-progress",
        "--format", "csv"]


def test_a_second_run_on_the_same_out_refuses_at_once_naming_the_holder(tmp_path, plugin_site):
    """Guards against the bug the issue found: two runs one second apart on one --out both ran
    every cell (each cell recorded twice). Now the second exits 2 at once with one line naming
    the first run's pid, and every cell is recorded once. Cells sleep 2 s (12 s in all) so the
    first run still holds the folder when a slow (loaded) machine has started the second."""
    env = toy_env(plugin_site, tmp_path / "cache", misbehaving_plugin(tmp_path / "plug"), SLEEPY_S="2.0")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bench", "run", *GRID, "--out", str(out)]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / HOLDER_NAME).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)
    start = time.monotonic()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    refused_after = time.monotonic() - start
    assert first.poll() is None, "the first run ended before the second started: the grid is too short"
    assert first.wait(120) == 0, first.stderr.read() if first.stderr else ""
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in second.stderr
    assert f"is in use by another bench run (pid {first.pid} on " in lines[0]
    assert refused_after < 30  # at once: start-up only, no waiting for the lock
    ids = [json.loads(line)["cell_id"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 6
    assert not (out / HOLDER_NAME).exists()  # released at the end


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    """A SIGKILLed run must not block the next one (flock dies with the process)."""
    code = ("import sys, time; from bench.run.lock import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=rf"in use by another bench run \(pid {holder.pid} on"):
        with RunLock(tmp_path):
            pass
    holder.kill()
    holder.wait()
    with RunLock(tmp_path):  # the stale holder file is overwritten
        assert json.loads((tmp_path / HOLDER_NAME).read_text())["pid"] != holder.pid


def test_two_processes_on_one_feature_cache_never_read_a_half_written_entry(tmp_path):
    """Writers replace entries atomically and readers verify the checksum: 2 processes x 40
    rounds of write-then-read on the same keys read only whole, correct arrays."""
    code = r"""
import sys, numpy as np
from pathlib import Path
from bench.run.features import FeatureCache
cache, bad = FeatureCache(Path(sys.argv[1])), 0
for i in range(40):
    key = f"{i % 4:064x}"
    feats = np.full((500, 64), float(i % 4), dtype=np.float32)
    cache.store(key, feats)
    got = cache.load(key, 500)
    bad += got is None or not np.array_equal(got, feats)
print(bad)
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "features")], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    assert [int(p.communicate(timeout=120)[0]) for p in procs] == [0, 0]


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "garbage"])
def test_a_damaged_cache_entry_is_detected_warned_and_recomputed(tmp_path, damage):
    """Guards against serving corrupt features: the old cache loaded a bit-flipped .npy as if it
    were fine (only a wrong row count was caught)."""
    import numpy as np

    from bench.run.features import FeatureCache

    cache = FeatureCache(tmp_path)
    feats = np.arange(200 * 8, dtype=np.float32).reshape(200, 8)
    key = "ab" * 32
    cache.store(key, feats)
    path = cache.path(key)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "bitflip":
        start = data.index(np.float32(100.0).tobytes())  # inside the features array
        data[start + 1] ^= 0x04
    else:
        data = bytearray(b"\x93NUMPY not really" * 10)
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=r"feature cache entry .* is damaged .*; recomputing it"):
        assert cache.load(key, 200) is None
    cache.store(key, feats)
    assert np.array_equal(cache.load(key, 200), feats)


def test_cache_entries_refuse_pickles(tmp_path):
    """An entry holding a pickled object (code on load) is not loaded: allow_pickle=False."""
    import numpy as np

    from bench.run.features import FeatureCache

    cache = FeatureCache(tmp_path)
    key = "cd" * 32
    cache.path(key).parent.mkdir(parents=True)
    with open(cache.path(key), "wb") as f:
        np.savez(f, features=np.array([{"evil": 1}], dtype=object), sha256=np.array("0"))
    with pytest.warns(RuntimeWarning, match="Object arrays cannot be loaded"):
        assert cache.load(key, 1) is None
