"""Figure 3: the default ``bench run`` wall time against its eager compute floor.

1. Runs ``bench run`` (the default run's encoders, strategies and task; by default a reduced grid,
   ``--budgets 1,10 --seeds 1``, so it fits a shared 2-core machine; ``--full`` for the default
   grid) in a subprocess, into a temp folder with a fresh ``BENCH_CACHE_DIR`` (a cold feature cache:
   the run really encodes), timing its wall and time-stamping its progress bar's events.
2. Reads the records and the run's "encoding N images" events and times, as bare eager PyTorch loops
   (the encoder's plain ``nn.Module`` plus a linear head, random tensors of the records' image size,
   ``torch.optim.AdamW``, ``torch.no_grad`` for forwards; no harness code), every pass those records
   needed: the feature cache's encode passes, each training cell's steps (steps and batch size from
   ``info``; BatchNorm in train mode and the BatchNorm recalibration pass where ``info.bn_recalibrated``),
   each training cell's prediction pass over the test split (batch 256), and the forgetting passes
   (the adapted backbone over the reference subsample per record, the original backbone's once).
   The floor is timed ``--rounds`` times (default 2) right after the run; the mean is used.
3. Prints the floor by component, the run's wall, the ratio (target <= 0.8), and the gap split by
   the run's own progress timestamps (startup, encoder load, encode overhead, contamination checks,
   cell overheads, the end).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_floor.py [--full] [--budgets 1,10 --seeds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

BAR = re.compile(r"^(?P<desc>.*?): +\d+%\|.*?\| *(?P<n>\d+)/(?P<total>\d+)")
GROUP_EVENT = re.compile(r"^(?P<group>[^|]+\|[^|:]+): (?P<what>loading encoder|encoding (?P<n>\d+) images|"
                         r"contamination checks)$")
STARTUP = """
import json, time
t = [time.perf_counter()]
import bench.cli
from bench.plugins import load_plugins
plugins = load_plugins(); t.append(time.perf_counter())
import torch, sklearn.linear_model  # noqa: F401
t.append(time.perf_counter())
from bench.loading import TaskLoader
loader = TaskLoader(plugins)
for name in %r: loader.load(name)
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""


def run_bench(args: list[str], env: dict[str, str]) -> tuple[float, list[tuple[float, str, int]], str]:
    """Run ``bench ARGS``; return its wall, its progress events (seconds, description, cells done) and stdout."""
    exe = shutil.which("bench") or str(Path(sys.executable).parent / "bench")
    events: list[tuple[float, str, int]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def read_stderr() -> None:
        assert proc.stderr is not None
        buf = b""
        while chunk := proc.stderr.read1(4096):  # type: ignore[attr-defined]
            now = time.perf_counter() - t0
            buf += chunk
            *lines, buf = re.split(rb"[\r\n]", buf)
            # tqdm starts each write with \r: the newest line has no terminator yet, so read it now too
            # (kept in buf in case it is cut; the (description, count) check drops the repeat)
            for raw in [*lines, buf]:
                m = BAR.match(raw.decode(errors="replace").strip())
                if m and (not events or events[-1][1:] != (m["desc"], int(m["n"]))):
                    events.append((now, m["desc"], int(m["n"])))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.wait()
    wall = time.perf_counter() - t0
    reader.join()
    if proc.returncode:
        raise SystemExit(f"bench {' '.join(args)} failed with status {proc.returncode}")
    return wall, events, out


def spans(events: list[tuple[float, str, int]], wall: float) -> tuple[float, list[tuple[str, float]], float]:
    """(startup, [(description, seconds)] of each group event or cell, end): the run's wall, cut by its events.

    A cell runs from its description's event to the event where the done count next rises."""
    marks: list[tuple[float, str]] = []
    last_n, last_desc = 0, None
    for t, desc, n in events:
        if n > last_n:
            marks.append((t, "<done>"))
            last_n = n
        if desc != last_desc:
            marks.append((t, desc))
            last_desc = desc
    out = [(d, marks[i + 1][0] - t) for i, (t, d) in enumerate(marks[:-1]) if d != "<done>"]
    end_start = marks[-1][0] if marks else 0.0
    return (marks[0][0] if marks else wall), out, wall - end_start


class Floor:
    """Bare eager loops on plain tensors of one encoder module; each call's seconds are summed by component."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)
        self.modules: dict[str, Any] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.passes: dict[str, int] = defaultdict(int)

    def module(self, encoder: str, resolution: int) -> tuple[Any, int]:
        key = f"{encoder}@{resolution}"
        if key not in self.modules:
            from bench.plugins import load_plugins
            from bench.specs import EncoderRequest

            spec = load_plugins().encoders.get(encoder)
            enc = spec.load(EncoderRequest(name=encoder, resolution=resolution, native_size=resolution))
            self.modules[key] = (enc.module.eval(), enc.feature_dim)
        return self.modules[key]

    def inputs(self, n: int, resolution: int) -> Any:
        import torch

        return torch.randn(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))

    def forward(self, component: str, encoder: str, resolution: int, n: int, batch: int = 256,
                train_mode: bool = False, head: int = 0) -> None:
        """``n`` images through the module at ``batch`` under no_grad (a head of ``head`` classes: logits)."""
        import copy

        import torch

        module, dim = self.module(encoder, resolution)
        model = copy.deepcopy(module)
        if head:
            model = torch.nn.Sequential(model, torch.nn.Linear(dim, head))
        model.train(train_mode)
        x = self.inputs(n, resolution)
        t = time.perf_counter()
        with torch.no_grad():
            for s in range(0, n, batch):
                model(x[s : s + batch]).numpy()
        self.seconds[component] += time.perf_counter() - t
        self.passes[component] += 1

    def train(self, encoder: str, resolution: int, n: int, steps: int, batch: int, bn_train: bool,
              classes: int) -> None:
        """``steps`` AdamW steps on batches of ``batch`` of ``n`` images (BatchNorm frozen unless ``bn_train``)."""
        import copy

        import torch
        import torch.nn.functional as F

        module, dim = self.module(encoder, resolution)
        model = torch.nn.Sequential(copy.deepcopy(module), torch.nn.Linear(dim, classes))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        x, y = self.inputs(n, resolution), torch.arange(n) % classes
        model.train()
        if not bn_train:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        t = time.perf_counter()
        for step in range(steps):
            s = (step * batch) % max(1, n - batch + 1)
            loss = F.cross_entropy(model(x[s : s + batch]), y[s : s + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self.seconds["training steps"] += time.perf_counter() - t
        self.passes["training steps"] += 1


def measure_floor(records: list[dict[str, Any]], encodes: list[tuple[str, int]]) -> Floor:
    """Time every pass ``records`` needed, plus the run's encode passes ``(group, images)``."""
    floor = Floor()
    res = {(r["task"], r["encoder"]): int(r["encoder_info"]["resolution"]) for r in records}
    for group, n in encodes:
        task, encoder = (s.strip() for s in group.split("|"))
        floor.forward("encode passes (feature cache)", encoder, res[(task, encoder)], n)
    from bench.loading import TaskLoader
    from bench.plugins import load_plugins

    loader = TaskLoader(load_plugins())
    originals: set[tuple[str, str]] = set()
    for r in records:
        info, enc, r_res = r.get("info") or {}, r["encoder"], res[(r["task"], r["encoder"])]
        if r["status"] != "ok" or "steps" not in info:
            continue
        classes = len(loader.load(r["task"]).classes)
        floor.train(enc, r_res, int(r["n_labelled"]), int(info["steps"]), int(info["batch_size"]),
                    bool(info.get("bn_recalibrated")), classes)
        if info.get("bn_recalibrated"):
            floor.forward("BatchNorm recalibration", enc, r_res, int(r["n_labelled"]), train_mode=True)
        floor.forward("prediction passes (test split)", enc, r_res, int(r["task_info"]["test"]), head=classes)
        f = r.get("forgetting")
        if f:
            backbones = 1 if (enc, f["reference_task"]) in originals else 2  # the original's pass once
            for n in [f["reference_train_items"], f["reference_test_items"]] * backbones:
                floor.forward("forgetting passes (reference)", enc, r_res, int(n))
            originals.add((enc, f["reference_task"]))
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full default grid (budgets 1,2,5,10,20, 3 seeds)")
    parser.add_argument("--budgets", default="1,10", help="reduced grid's budgets (default 1,10)")
    parser.add_argument("--seeds", default="1", help="reduced grid's seeds (default 1)")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR (kept) instead of a temp folder")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times the floor is measured after the run; the mean is the floor (default 2)")
    args = parser.parse_args()

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench-floor-"))
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp / "cache"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    grid = [] if args.full else ["--budgets", args.budgets, "--seeds", args.seeds]
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    startup_parts = json.loads(subprocess.run([sys.executable, "-c", STARTUP % (["mnist5k"],)], env=env,
                                              capture_output=True, text=True, check=True).stdout)
    wall, events, _ = run_bench(["run", "--out", str(tmp / "run"), *grid], env)
    records = [json.loads(line) for line in (tmp / "run" / "results.jsonl").read_text().splitlines()]
    ran = [r for r in records if r["status"] != "skipped"]
    (tmp / "events.json").write_text(json.dumps({"wall": wall, "events": events}, indent=1))
    startup, cut, end = spans(events, wall)
    encodes = [(m["group"], int(m["n"])) for d, _ in cut if (m := GROUP_EVENT.match(d)) and m["n"]]
    rounds = [measure_floor(ran, encodes) for _ in range(max(1, args.rounds))]
    round_totals = [sum(r.seconds.values()) for r in rounds]
    floor = rounds[0]
    for comp in floor.seconds:  # the mean over rounds
        floor.seconds[comp] = sum(r.seconds[comp] for r in rounds) / len(rounds)
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    total = sum(floor.seconds.values())
    report(args, grid, wall, total, floor, startup, startup_parts, cut, end, ran, uptime_before, uptime_after)
    if len(rounds) > 1:
        print(f"\nFloor per round (s): {', '.join(f'{t:.1f}' for t in round_totals)}; the floor is their mean.")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


def report(args: Any, grid: list[str], wall: float, total: float, floor: Floor, startup: float,
           startup_parts: list[float], cut: list[tuple[str, float]], end: float, ran: list[dict[str, Any]],
           uptime_before: str, uptime_after: str) -> None:
    import torch

    grid_text = "the default grid" if args.full else " ".join(grid)
    print("## Figure 3: the default run against its eager floor\n")
    print(f"`bench run` ({grid_text}; {len(ran)} cells run), cold feature cache, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPU cores.\n")
    print(f"- uptime before: `{uptime_before}`\n- uptime after: `{uptime_after}`\n")
    print("| floor component | passes | seconds |\n|---|---|---|")
    for comp, s in floor.seconds.items():
        print(f"| {comp} | {floor.passes[comp]} | {s:.1f} |")
    print(f"| **floor** | | **{total:.1f}** |\n")
    print(f"Run wall: **{wall:.1f} s**; floor **{total:.1f} s**; ratio wall / floor **{wall / total:.2f}** "
          f"(target <= 0.8).\n")
    by_label = {f"{r['task']} | {r['encoder']} | {r['strategy']} | {r['budget']} | seed {r['seed']}": r for r in ran}
    gap: dict[str, float] = defaultdict(float)
    names = ["imports + plugin load", "torch + scikit-learn import", "task load (mnist5k)"]
    for name, s in zip(names, startup_parts):
        gap[f"startup: {name}"] = s
    gap["startup: planning, manifests, budget checks (rest)"] = startup - sum(startup_parts)
    fl = floor.seconds
    train_floor = fl["training steps"] + fl["BatchNorm recalibration"] + fl["prediction passes (test split)"]
    encode_span = train_span = forget_span = 0.0
    for desc, s in cut:
        m = GROUP_EVENT.match(desc)
        if m and m["n"]:
            encode_span += s
        elif m and m["what"] == "loading encoder":
            gap["encoder load"] += s
        elif m:
            gap["contamination checks, strategies, reference task, cell ids"] += s
        elif desc in by_label and "steps" in (by_label[desc].get("info") or {}):
            train_span += by_label[desc]["wall_s"]
            forget_span += s - by_label[desc]["wall_s"]
        else:
            gap["linear-probe cells (L-BFGS on cached features; no floor)"] += s
    gap["encode passes: decode, preprocess, cache write (span - floor)"] = (
        encode_span - fl["encode passes (feature cache)"])
    gap["training cells: fit + predict (wall_s - floor)"] = train_span - train_floor
    gap["forgetting: probe fits, preprocessing, records (span - floor)"] = (
        forget_span - fl["forgetting passes (reference)"])
    gap["end: leaderboard, exit"] = end
    print(f"Where the run's {wall:.1f} s went beyond the floor (gap {wall - total:+.1f} s), from its progress "
          "timestamps:\n")
    print("| component | seconds | share of gap |\n|---|---|---|")
    for name, s in sorted(gap.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {s:.1f} | {s / (wall - total):.0%} |")
    print(f"| total (check) | {sum(gap.values()):.1f} | |")


if __name__ == "__main__":
    main()
