"""Figure 4: the project's linear probe against CLIP_benchmark's (``clip_benchmark.metrics.linear_probe.train``).

Same cached EfficientNet-Lite0 features of mnist5k (64 px, the default run's), same manifests
(bench.run.budgets.sample: 1, 5, 20 per class and the full pool, seeds 0-2), same test split. Per cell,
accuracy and seconds (the fit and the test predictions; each cell timed ``REPEATS`` times, the fastest
kept, wall and CPU apart), interleaved cell by cell so machine load hits every method alike, for

- ``ours``: the ``linear-probe`` strategy itself (``LinearProbe().fit`` and ``predict`` with its
  defaults: ``C = "auto"``, the per-budget table, and the direct L-BFGS engine);
- ``ours C=100``: the same strategy with the earlier single default ``C = 100``;
- ``before``: the probe as it was before the per-budget C and the direct engine (C = 100,
  scikit-learn's ``LogisticRegression`` in the items' span, predictions on a scaled copy);
- ``clip-benchmark``: its ``train()`` with its defaults (AdamW, lr 0.1, 10 epochs, batch 64, no
  weight decay without a validation split) on L2-normalised features, as its ``evaluate()`` feeds it.
  It calls ``.cuda()`` and is meant for a GPU: here ``Module.cuda`` and ``Tensor.cuda`` are patched
  to no-ops so it runs on the CPU.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_probe.py
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import time
from typing import Any

BUDGETS = ("1", "5", "20", "full")
SEEDS = (0, 1, 2)
#: each cell is timed this many times, the fastest kept (wall and CPU apart): the machine is shared
REPEATS = 3
METHODS = ("ours", "ours C=100", "before", "clip-benchmark")


class CachedSplit:
    """A split as a cell sees it: its cached features (``ctx.features``) and labels."""

    def __init__(self, x: Any, labels: Any) -> None:
        self.x, self.labels, self.ids = x, labels, [str(i) for i in range(len(x))]

    def __len__(self) -> int:
        return len(self.x)


def clip_benchmark_probe(train_x, train_y, test_x, num_classes: int, seed: int):  # type: ignore[no-untyped-def]
    import torch
    from clip_benchmark.metrics.linear_probe import FeatureDataset, train
    from torch.utils.data import DataLoader

    x = torch.nn.functional.normalize(torch.as_tensor(train_x), dim=-1)
    loader = DataLoader(FeatureDataset(x, torch.as_tensor(train_y)), batch_size=64, shuffle=True, num_workers=0)
    with contextlib.redirect_stdout(io.StringIO()):  # its per-step log
        model = train(loader, x.shape[1], num_classes, 0.0, 0.1, 10, False, "cpu", seed)
    with torch.no_grad():
        logits = model(torch.nn.functional.normalize(torch.as_tensor(test_x), dim=-1))
    return logits.argmax(dim=1).numpy(), {}


def main() -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]

    from bench import probe
    from bench.plugins import load_plugins
    from bench.run.budgets import parse_budget, sample
    from bench.run.features import FeatureCache
    from bench.specs import EncoderRequest, TaskRequest
    from bench.strategies import FitContext
    from bench_plugins.strategies._linear_probe import LinearProbe

    plugins = load_plugins()
    spec = plugins.strategies.get("linear-probe")
    task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
    enc = plugins.encoders.get("efficientnet-lite0").load(EncoderRequest(name="efficientnet-lite0", resolution=64))
    cache = FeatureCache()
    train_x, test_x = cache.get(enc, task.train), cache.get(enc, task.test)
    train_y, test_y = np.asarray(task.train.labels), np.asarray(task.test.labels)
    test = CachedSplit(test_x, test_y)

    def strategy(pos, seed, C):  # type: ignore[no-untyped-def]
        labelled = CachedSplit(train_x[pos], train_y[pos])
        ctx = FitContext(task_name=task.name, classes=list(task.classes), labelled=labelled,
                         config={**dict(spec.defaults), "C": C}, seed=seed, features=lambda split: split.x)
        fitted = LinearProbe().fit(ctx)
        return fitted.predict(test), fitted.info

    def before(pos, seed):  # type: ignore[no-untyped-def]
        scale = probe.FeatureScale.fit(train_x[pos])
        clf, info = probe.fit_logistic_info(scale(train_x[pos]), train_y[pos], 100.0, 2000, seed, engine="sklearn")
        return clf.predict(scale(test_x)), {**info, "C": 100.0}

    runs = {
        "ours": lambda pos, seed: strategy(pos, seed, spec.defaults["C"]),
        "ours C=100": lambda pos, seed: strategy(pos, seed, 100.0),
        "before": before,
        "clip-benchmark": lambda pos, seed: clip_benchmark_probe(train_x[pos], train_y[pos], test_x,
                                                                 len(task.classes), seed),
    }
    strategy(np.arange(10), 0, 100.0), clip_benchmark_probe(train_x[:64], train_y[:64], test_x[:8], 10, 0)  # warm up
    rows = []
    for label in BUDGETS:
        budget = parse_budget(label)
        cells: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
        infos: dict[str, list[dict]] = {m: [] for m in METHODS}
        cpu_s: dict[str, list[float]] = {m: [] for m in METHODS}
        for seed in SEEDS:
            pos = sample(train_y, task.classes, "mnist5k", budget, seed)
            for name in METHODS:
                wall, cpu = [], []
                for _ in range(REPEATS):
                    t, c = time.perf_counter(), time.process_time()
                    pred, info = runs[name](pos, seed)
                    wall.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
                cells[name].append((float((np.asarray(pred) == test_y).mean()), min(wall)))
                cpu_s[name].append(min(cpu))
                infos[name].append(info)
        rows.append((label, len(pos), cells, infos, cpu_s))

    print("## Linear probe against CLIP_benchmark's (figure 4)\n")
    print(f"Command: `OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_probe.py`. Machine: {platform.machine()} "
          f"Linux, {os.cpu_count()} CPU cores shared with other jobs, torch {torch.__version__} (1 thread). "
          "clip-benchmark's `train()` runs with `.cuda()` patched to a no-op (it asserts a GPU).\n")
    print("| per class | n | ours: C | ours: acc | ours: s/cell | C=100: acc | C=100: s/cell | before: acc | "
          "before: s/cell | clip-benchmark: acc | clip-benchmark: s/cell | ours - clip (pts) | clip / ours time "
          "| before / ours time | iterations (ours / C=100 / before) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, n, cells, infos, _ in rows:
        m = {k: (float(np.mean([a for a, _ in v])), float(np.mean([s for _, s in v]))) for k, v in cells.items()}
        its = {k: np.mean([i.get("probe_iterations", 0) for i in v]) for k, v in infos.items()}
        print(f"| {label} | {n} | {infos['ours'][0]['C']:g} | {m['ours'][0]:.4f} | {m['ours'][1]:.4f} "
              f"| {m['ours C=100'][0]:.4f} | {m['ours C=100'][1]:.4f} | {m['before'][0]:.4f} | {m['before'][1]:.4f} "
              f"| {m['clip-benchmark'][0]:.4f} | {m['clip-benchmark'][1]:.4f} "
              f"| {100 * (m['ours'][0] - m['clip-benchmark'][0]):+.1f} | {m['clip-benchmark'][1] / m['ours'][1]:.2f} "
              f"| {m['before'][1] / m['ours'][1]:.2f} | {its['ours']:.0f} / {its['ours C=100']:.0f} / "
              f"{its['before']:.0f} |")
    print("\nCPU seconds per cell (process time, the fastest of the repeats; less exposed to the other jobs):\n")
    print("| per class | " + " | ".join(f"{m}: CPU s/cell" for m in METHODS) + " | clip / ours CPU |")
    print("|---|" + "---|" * (len(METHODS) + 1))
    for label, _, _, _, cpu_s in rows:
        c = {k: float(np.mean(v)) for k, v in cpu_s.items()}
        ratio = c["clip-benchmark"] / c["ours"]
        print(f"| {label} | " + " | ".join(f"{c[m]:.4f}" for m in METHODS) + f" | {ratio:.2f} |")
    diffs = [abs(a - b) for _, _, c, _, _ in rows for (a, _), (b, _) in zip(c["ours C=100"], c["before"])]
    print(f"\nLargest accuracy change of a cell at C = 100, direct engine vs before: {100 * max(diffs):.2f} pts "
          f"(test split of {len(test_y)} items: one item = {100 / len(test_y):.2f} pts).")


if __name__ == "__main__":
    main()
