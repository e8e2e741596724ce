"""Resume at cluster scale: scan a 1,000,000-record results file and pick the pending cells of a 100,000-cell grid.

Records are the published leaderboard's (leaderboard/results.jsonl, real sizes) with fresh ``cell_id``s,
written to a temporary folder. Timed: the streaming scan (bench.run.scan) against parsing every line
as JSON (on a sample, extrapolated), and the pending set (membership of each cell id in the done set).
Not timed yet: planning through the real Planner with synthetic specs (issue 25, left to do).

    python benchmarks/bench_driver.py [--records 1000000] [--cells 100000] [--check]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench.run.records import ResultsFile
from bench.run.scan import scan

ROOT = Path(__file__).resolve().parents[1]
TARGET_S, TARGET_GB = 10.0, 2.0


def write_results(path: Path, n: int) -> None:
    templates = []
    for line in (ROOT / "leaderboard" / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.pop("provenance", None)  # added by publishing, not by a run
        rec["cell_id"] = "@" * 16
        templates.append(json.dumps(rec, sort_keys=True).split("@" * 16))
    with path.open("w") as f:
        for i in range(n):
            head, tail = templates[i % len(templates)]
            f.write(f"{head}{i:016x}{tail}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--json-sample", type=int, default=20_000, help="lines parsed as JSON for the comparison")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.jsonl"
        write_results(path, args.records)
        size = path.stat().st_size
        t0, c0 = time.perf_counter(), time.process_time()
        found = scan(path)
        scan_s, scan_cpu = time.perf_counter() - t0, time.process_time() - c0
        sample = Path(tmp) / "sample.jsonl"
        with path.open("rb") as src, sample.open("wb") as dst:
            dst.writelines(line for _, line in zip(range(args.json_sample), src))
        c0 = time.process_time()
        ResultsFile(sample).done_ids()
        json_cpu = (time.process_time() - c0) * args.records / args.json_sample
        # a grid half of which is done: even cells are in the file, odd ones are new
        cells = [f"{i if i % 2 == 0 else args.records + i:016x}" for i in range(args.cells)]
        t0 = time.perf_counter()
        pending = [c for c in cells if c not in found.done]
        pending_s = time.perf_counter() - t0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    total = scan_s + pending_s
    rows = [("records", f"{found.records:,} ({size / found.records:,.0f} bytes each, {size / 2**30:.2f} GiB)"),
            ("scan wall / cpu s", f"{scan_s:.2f} / {scan_cpu:.2f} (json every line: {json_cpu:.1f} cpu s, "
             f"{json_cpu / scan_cpu:.1f}x)"),
            ("lines parsed as JSON", f"{found.parsed:,}"),
            ("pending", f"{len(pending):,} of {args.cells:,} cells in {pending_s:.3f} s"),
            ("scan + pending s", f"{total:.2f} (target <= {TARGET_S:g}: {'met' if total <= TARGET_S else 'missed'})"),
            ("peak RSS GB", f"{rss_gb:.2f} (target <= {TARGET_GB:g}: {'met' if rss_gb <= TARGET_GB else 'missed'})")]
    for name, value in rows:
        print(f"{name:<22} {value}")
    return 1 if args.check and (total > TARGET_S or rss_gb > TARGET_GB) else 0


if __name__ == "__main__":
    sys.exit(main())
