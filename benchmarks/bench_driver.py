"""Resume at cluster scale: the runner prepares a 100,000-cell grid against a 1,000,000-record results file.

Timed is the runner's own path before the first cell runs (``Runner.prepare`` in a process that has
not imported torch, as ``bench run`` starts): the resume scan of ``results.jsonl`` (in a spawned
process above ``bench.run.scan.BACKGROUND_BYTES``), the device (torch's import), the plan (task
load, scikit-learn's import, the manifests read), the skipped cells' identities, the encoders
loaded for their fingerprints and every planned cell's identity, then the pending set.

The grid: 5 encoders x 10 strategies x 10 budgets x S seeds on digits (scikit-learn's, no download).
The results file: records cut from the published leaderboard (real sizes), 1,000,000 lines in all,
holding the grid's skipped cells and every other planned cell under their real ``cell_id`` (a
spawned process computes them first, writing the manifests as a first run would) and filler
records with fresh ids. Also timed, after: the scan in this process alone, and parsing every line
as JSON (on a sample, extrapolated).

    python benchmarks/bench_driver.py [--records 1000000] [--cells 100000] [--serial] [--check]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.run.records import ResultsFile

PLAN_ENCODERS = ["pixels", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2",
                 "efficientnet-lite0-random"]
PLAN_STRATEGIES = ["scratch", "linear-probe", "finetune", "lp-ft", "lora", "adapter", "bitfit", "knn", "prototype",
                   "l2-sp"]
PLAN_BUDGETS = "1,2,3,4,5,6,7,8,9,10"
ROOT = Path(__file__).resolve().parents[1]
TARGET_S, TARGET_GB = 10.0, 2.0


def grid_config(out: Path, cells: int) -> Any:
    from bench.run.plan import RunConfig

    per_seed = len(PLAN_ENCODERS) * len(PLAN_STRATEGIES) * len(PLAN_BUDGETS.split(","))
    return RunConfig(encoders=PLAN_ENCODERS, strategies=PLAN_STRATEGIES, tasks=["digits"], budgets=PLAN_BUDGETS,
                     seeds=max(1, cells // per_seed), out=out, device="cpu", contamination=False, forgetting="off",
                     progress=False)


def grid_ids(out: Path, cells: int) -> tuple[list[str], list[str]]:
    """(planned cells' ids, skipped cells' ids) in grid order, as the runner computes them (run in a
    spawned process: this one must not import torch before the timed part)."""
    from bench.plugins import load_plugins
    from bench.run.runner import Runner

    runner = Runner(grid_config(out, cells), load_plugins())
    plan = runner.plan()  # writes the manifests
    ids = runner.identities(plan.cells)
    skips = runner.skip_identities([c for c, _ in plan.skips])
    return [ids[c.key()].cell_id for c in plan.cells], [skips[c.key()].cell_id for c, _ in plan.skips]


def write_results(path: Path, n: int, grid: dict[str, list[str]]) -> None:
    """``n`` records: the ids of ``grid["ok"]`` and ``grid["skipped"]`` (statuses to match) spread
    through the file, fresh ids on the rest."""
    templates: dict[str, list[list[str]]] = {"ok": [], "skipped": [], "any": []}
    for line in (ROOT / "leaderboard" / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.pop("provenance", None)  # added by publishing, not by a run
        rec["cell_id"] = "@" * 16
        parts = json.dumps(rec, sort_keys=True).split("@" * 16)
        templates["any"].append(parts)
        if rec["status"] in ("ok", "skipped"):
            templates[rec["status"]].append(parts)
    known = [(cid, status) for status in ("skipped", "ok") for cid in grid[status]]
    every = max(1, n // max(1, len(known)))
    with path.open("w") as f:
        for i in range(n):
            k, r = divmod(i, every)
            if r == 0 and k < len(known):
                cid, status = known[k]
                head, tail = templates[status][k % len(templates[status])]
            else:
                cid = f"{i:016x}"
                head, tail = templates["any"][i % len(templates["any"])]
            f.write(f"{head}{cid}{tail}\n")


def timed_prepare(out: Path, cells: int) -> dict[str, Any]:
    """``Runner.prepare`` on ``out``, each of its steps timed (wall s)."""
    import bench.run.runner
    from bench.plugins import load_plugins
    from bench.run.runner import Runner
    from bench.run.scan import ScanJob

    times: dict[str, float] = {}
    torch_before = "torch" in sys.modules

    def timed(name: str, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - t
        return call

    class TimedJob(ScanJob):
        def result(self) -> Any:
            return timed("waiting for the scan", super().result)()

    t0 = time.perf_counter()
    runner = Runner(grid_config(out, cells), load_plugins())
    jobs: list[TimedJob] = []

    def start_scan() -> TimedJob:
        jobs.append(TimedJob(runner.results.path))
        return jobs[-1]

    runner.folder.start_scan = start_scan  # type: ignore[method-assign]
    for name in ("plan", "skip_identities", "identities"):
        setattr(runner, name, timed(name, getattr(runner, name)))
    for name in ("group_device", "load_encoder"):  # the functions the runner calls, timed where it calls them
        setattr(bench.run.runner, name, timed(name, getattr(bench.run.runner, name)))
    with runner.folder.hold():
        new, pending = runner.prepare()
    times["total"] = time.perf_counter() - t0
    manifests = len(runner.budgets) * runner.cfg.seeds
    return {"times": times, "new": len(new), "pending": len(pending), "background": jobs[0].background,
            "manifests": manifests,
            "torch before": torch_before}


def scan_alone(path: Path) -> tuple[float, float, float, Any]:
    """The scan in a fresh process (wall s, cpu s, peak RSS GB: what the runner's scan process holds)."""
    # VmHWM, not ru_maxrss: Linux carries a process's ru_maxrss across exec, so a child would report its parent's
    code = ("import re, sys, time; from bench.run.scan import scan; t = time.perf_counter();"
            "c = time.process_time(); s = scan(sys.argv[1]); print(time.perf_counter() - t, time.process_time() - c,"
            "int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 2**20, s.records,"
            "s.parsed)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    return float(out[0]), float(out[1]), float(out[2]), (int(out[3]), int(out[4]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--json-sample", type=int, default=20_000, help="lines parsed as JSON for the comparison")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--serial", action="store_true", help="scan in the runner's process whatever the size (the "
                    "path below bench.run.scan.BACKGROUND_BYTES), for the comparison")
    args = ap.parse_args()
    if args.serial:
        import bench.run.scan

        bench.run.scan.BACKGROUND_BYTES = 2**62
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            planned, skipped = pool.submit(grid_ids, out, args.cells).result()
        path = out / "results.jsonl"
        write_results(path, args.records, {"ok": planned[::2], "skipped": skipped})
        size = path.stat().st_size
        run = timed_prepare(out, args.cells)
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        scan_s, scan_cpu, scan_gb, (records, parsed) = scan_alone(path)
        sample = Path(tmp) / "sample.jsonl"
        with path.open("rb") as src, sample.open("wb") as dst:
            dst.writelines(line for _, line in zip(range(args.json_sample), src))
        c0 = time.process_time()
        ResultsFile(sample).done_ids()
        json_cpu = (time.process_time() - c0) * args.records / args.json_sample
    t = run["times"]
    total = t["total"]
    rest = total - sum(v for k, v in t.items() if k not in ("total", "load_encoder"))
    scaled = t["plan"] + t["skip_identities"] + t["identities"] - t["load_encoder"]
    expected = len(planned) - len(planned[::2])
    rows = [("load average", f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min, at the start)"),
            ("records", f"{records:,} ({size / records:,.0f} bytes each, {size / 2**30:.2f} GiB), "
             f"{len(skipped):,} skipped + {len(planned[::2]):,} ok of the grid's"),
            ("grid", f"{len(planned) + len(skipped):,} cells: {len(planned):,} planned, {len(skipped):,} skipped"),
            ("scan", f"{'in a spawned process' if run['background'] else 'in this process'} "
             f"(alone: {scan_s:.2f} s wall, {scan_cpu:.2f} cpu s; JSON every line: {json_cpu:.1f} cpu s, "
             f"{json_cpu / scan_cpu:.1f}x; {parsed:,} lines parsed as JSON)"),
            ("plan", f"{t['plan']:.2f} s (task load, scikit-learn's import, {run['manifests']:,} manifests read)"),
            ("skipped identities", f"{t['skip_identities']:.2f} s"),
            ("identities", f"{t['identities']:.2f} s, of which {t['load_encoder']:.2f} s loading the 5 encoders "
             "(for their fingerprints; timm's import)"),
            ("device", f"{t['group_device']:.2f} s (torch's import)"),
            ("waiting for the scan", f"{t.get('waiting for the scan', 0.0):.2f} s (after the steps above)"),
            ("the rest", f"{rest:.2f} s (plugins, the pending set; the scan itself when it runs here)"),
            ("scale-bound steps", f"{scaled:.2f} s (plan and identities without the encoder loads, beside "
             f"{scan_s:.2f} s of scan: the previous measure's parts)"),
            ("pending", f"{run['pending']:,} cells (expected {expected:,}); {run['new']} records appended"),
            ("total wall s", f"{total:.2f} (Runner.prepare from a process without torch; target <= {TARGET_S:g}: "
             f"{'met' if total <= TARGET_S else 'missed'})"),
            ("peak RSS GB", f"{rss_gb:.2f} runner + {scan_gb:.2f} scan process (target <= {TARGET_GB:g}: "
             f"{'met' if rss_gb + scan_gb <= TARGET_GB else 'missed'})")]
    for name, value in rows:
        print(f"{name:<22} {value}")
    if run["pending"] != expected or run["new"] or run["torch before"]:
        print("bench_driver: the prepared run is not the expected one", file=sys.stderr)
        return 1
    return 1 if args.check and (total > TARGET_S or rss_gb + scan_gb > TARGET_GB) else 0


if __name__ == "__main__":
    sys.exit(main())
