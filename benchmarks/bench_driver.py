"""Resume at cluster scale: scan a 1,000,000-record results file and pick the pending cells of a 100,000-cell grid.

Records are the published leaderboard's (leaderboard/results.jsonl, real sizes) with fresh ``cell_id``s,
written to a temporary folder. Timed: the streaming scan (bench.run.scan) against parsing every line
as JSON (on a sample, extrapolated), and the pending set (membership of each cell id in the done set).
Planning is timed through the real Planner on a real task (scikit-learn's digits, no download):
5 encoders x 10 strategies x 10 budgets x S seeds, its manifests written (first use) and every
cell's identity computed as the runner does before a group runs, without loading an encoder.

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

PLAN_ENCODERS = ["pixels", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2",
                 "efficientnet-lite0-random"]
PLAN_STRATEGIES = ["scratch", "linear-probe", "finetune", "lp-ft", "lora", "adapter", "bitfit", "knn", "prototype",
                   "l2-sp"]
PLAN_BUDGETS = "1,2,3,4,5,6,7,8,9,10"


def plan_grid(out: Path, cells: int) -> tuple[int, int, tuple[float, float], tuple[float, float]]:
    """Plan about ``cells`` cells on digits and compute their identities:
    (cells, manifests written, (plan wall s, cpu s), (identities wall s, cpu s))."""
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins
    from bench.run.budgets import Manifests
    from bench.run.identities import cell_identities
    from bench.run.plan import Planner, RunConfig

    per_seed = len(PLAN_ENCODERS) * len(PLAN_STRATEGIES) * len(PLAN_BUDGETS.split(","))
    cfg = RunConfig(encoders=PLAN_ENCODERS, strategies=PLAN_STRATEGIES, tasks=["digits"], budgets=PLAN_BUDGETS,
                    seeds=max(1, cells // per_seed), out=out, contamination=False, forgetting="off", progress=False)
    plugins = load_plugins()
    t0, c0 = time.perf_counter(), time.process_time()
    planner = Planner(cfg, plugins)
    manifests = Manifests(out)
    written = 0

    def on_budget(task, budget, seed):
        nonlocal written
        manifests.positions(task, budget, seed)
        written += 1

    tasks = {}
    loader = TaskLoader(plugins, None, False)

    def load(name: str):
        tasks[name] = loader.load(name)
        return tasks[name]

    plan = planner.plan(load, on_budget)
    plan_s, plan_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    n_ids = 0
    everything = plan.cells + [c for c, _ in plan.skips]
    for enc in PLAN_ENCODERS:
        group = [c for c in everything if c.encoder == enc]
        n_ids += len(cell_identities(planner, tasks["digits"], enc, group, manifests))
    return n_ids, written, (plan_s, plan_cpu), (time.perf_counter() - t0, time.process_time() - c0)

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
        planned = plan_grid(Path(tmp) / "plan", args.cells)
        n_planned, n_manifests, (plan_s, plan_cpu), (ids_s, ids_cpu) = planned
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    total = scan_s + pending_s + plan_s + ids_s
    total_cpu = scan_cpu + plan_cpu + ids_cpu + pending_s
    rows = [("records", f"{found.records:,} ({size / found.records:,.0f} bytes each, {size / 2**30:.2f} GiB)"),
            ("scan wall / cpu s", f"{scan_s:.2f} / {scan_cpu:.2f} (json every line: {json_cpu:.1f} cpu s, "
             f"{json_cpu / scan_cpu:.1f}x)"),
            ("lines parsed as JSON", f"{found.parsed:,}"),
            ("pending", f"{len(pending):,} of {args.cells:,} cells in {pending_s:.3f} s"),
            ("plan wall / cpu s", f"{plan_s:.2f} / {plan_cpu:.2f} ({n_planned:,} cells of digits, "
             f"{n_manifests:,} manifests written)"),
            ("identities wall / cpu s", f"{ids_s:.2f} / {ids_cpu:.2f} (every planned cell's cell_id)"),
            ("total wall / cpu s", f"{total:.2f} / {total_cpu:.2f} (plan, identities, scan, pending; "
             f"target <= {TARGET_S:g} wall: {'met' if total <= TARGET_S else 'missed'})"),
            ("peak RSS GB", f"{rss_gb:.2f} (target <= {TARGET_GB:g}: {'met' if rss_gb <= TARGET_GB else 'missed'})")]
    for name, value in rows:
        print(f"{name:<22} {value}")
    return 1 if args.check and (total > TARGET_S or rss_gb > TARGET_GB) else 0


if __name__ == "__main__":
    sys.exit(main())
