"""Executors on one machine: wall time of ``ray``, ``submitit`` (local cluster) and ``local --jobs 2``
against ``local`` on a 24-cell grid, and whether their records equal ``local``'s (BENCHMARKS.md, figure 5).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python benchmarks/bench_executors.py

The grid: pixels on digits and mnist5k (two task x encoder groups), linear-probe, knn and
prototype, budgets 1 and 5 per class, 2 seeds: 24 probe cells, cheap on any CPU. Each executor
runs ``bench run`` (the CLI a user runs) into a fresh folder, ``local`` first; all share one
feature cache, warmed by ``local``, so the others do not pay for encoding. Wall time is the
whole command: start-up, Ray's or submitit's own start-up, and the leaderboard at the end.
Records are compared without their volatile fields (wall_s, peak_mem_mb, timestamp, versions,
device_info).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = ["--encoders", "pixels", "--tasks", "digits,mnist5k", "--strategies", "linear-probe,knn,prototype",
        "--budgets", "1,5", "--seeds", "2", "--device", "cpu", "--no-contamination", "--forgetting", "off",
        "--no-progress"]
EXECUTORS = {
    "local": [],
    "local --jobs 2": ["--jobs", "2"],
    "ray": ["--executor", "ray"],
    "submitit (local)": ["--executor", "submitit", "--executor-option", "cluster=local"],
}
VOLATILE = {"wall_s", "peak_mem_mb", "timestamp", "versions", "device_info"}


def stable(path: Path) -> list[str]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True) for r in records)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(EXECUTORS), help="executors besides local")
    args = ap.parse_args()
    names = ["local", *[n for n in (args.only or EXECUTORS) if n != "local"]]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("BENCH_CACHE_DIR", str(Path(tmp) / "cache"))
        rows, base, base_s = [], None, 0.0
        for name in names:
            out = Path(tmp) / name.replace(" ", "_")
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "bench", "run", *GRID, *EXECUTORS[name], "--out", str(out)],
                                  env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
                continue
            records = stable(out / "results.jsonl")
            if base is None:
                base, base_s = records, wall
            same = "yes" if records == base else "NO"
            rows.append((name, len(records), wall, wall / base_s, same))
    print("| executor | cells | wall s | / local | same records |")
    print("|---|---:|---:|---:|---|")
    for name, n, wall, ratio, same in rows:
        print(f"| {name} | {n} | {wall:.1f} | {ratio:.2f} | {same} |")


if __name__ == "__main__":
    main()
