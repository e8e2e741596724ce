"""Figure 4: the project's linear probe against CLIP_benchmark's (``clip_benchmark.metrics.linear_probe.train``).

Same cached EfficientNet-Lite0 features of mnist5k (64 px, the default run's), same manifests
(bench.run.budgets.sample: 1, 5, 20 per class and the full pool, seeds 0-2), same test split. Per cell:
accuracy and seconds, for

- ``ours``: what the ``linear-probe`` strategy does (FeatureScale, scikit-learn's L-BFGS logistic
  regression, C=100, max_iter 2000), through :func:`bench.probe.fit_logistic_info`;
- ``ours (before)``: the same with the solver in the full feature space (``subspace=False``, the
  code before the subspace solve), so the speed-up and the unchanged numbers are measured;
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

BUDGETS = ("1", "5", "20", "full")
SEEDS = (0, 1, 2)


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
    return logits.argmax(dim=1).numpy()


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

    plugins = load_plugins()
    task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
    enc = plugins.encoders.get("efficientnet-lite0").load(EncoderRequest(name="efficientnet-lite0", resolution=64))
    cache = FeatureCache()
    train_x, test_x = cache.get(enc, task.train), cache.get(enc, task.test)
    train_y, test_y = np.asarray(task.train.labels), np.asarray(task.test.labels)

    def ours(pos, seed, subspace):  # type: ignore[no-untyped-def]
        scale = probe.FeatureScale.fit(train_x[pos])
        clf, info = probe.fit_logistic_info(scale(train_x[pos]), train_y[pos], 100.0, 2000, seed, subspace=subspace)
        return clf.predict(scale(test_x)), info

    rows = []
    for label in BUDGETS:
        budget = parse_budget(label)
        cells = {"ours": [], "ours (before)": [], "clip-benchmark": []}
        iters = {"ours": [], "ours (before)": []}
        for seed in SEEDS:
            pos = sample(train_y, task.classes, "mnist5k", budget, seed)
            for name in ("ours (before)", "ours"):
                t = time.perf_counter()
                pred, info = ours(pos, seed, subspace=name == "ours")
                cells[name].append(((pred == test_y).mean(), time.perf_counter() - t))
                iters[name].append(info["probe_iterations"])
            t = time.perf_counter()
            pred = clip_benchmark_probe(train_x[pos], train_y[pos], test_x, len(task.classes), seed)
            cells["clip-benchmark"].append(((pred == test_y).mean(), time.perf_counter() - t))
        rows.append((label, len(pos), cells, iters))

    print("## Linear probe against CLIP_benchmark's (figure 4)\n")
    print(f"Command: `OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_probe.py`. Machine: {platform.machine()} "
          f"Linux, {os.cpu_count()} CPU cores shared with other jobs, torch {torch.__version__} (1 thread). "
          "clip-benchmark's `train()` runs with `.cuda()` patched to a no-op (it asserts a GPU).\n")
    print("| per class | n | ours: acc | ours: s/cell | before: acc | before: s/cell | clip-benchmark: acc "
          "| clip-benchmark: s/cell | ours - clip (pts) | clip / ours time | before / ours time | iterations "
          "(ours / before) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, n, cells, iters in rows:
        m = {k: (float(np.mean([a for a, _ in v])), float(np.mean([s for _, s in v]))) for k, v in cells.items()}
        print(f"| {label} | {n} | {m['ours'][0]:.4f} | {m['ours'][1]:.3f} | {m['ours (before)'][0]:.4f} "
              f"| {m['ours (before)'][1]:.3f} | {m['clip-benchmark'][0]:.4f} | {m['clip-benchmark'][1]:.3f} "
              f"| {100 * (m['ours'][0] - m['clip-benchmark'][0]):+.1f} | {m['clip-benchmark'][1] / m['ours'][1]:.2f} "
              f"| {m['ours (before)'][1] / m['ours'][1]:.1f} | {np.mean(iters['ours']):.0f} / "
              f"{np.mean(iters['ours (before)']):.0f} |")
    diffs = [abs(a - b) for _, _, c, _ in rows for (a, _), (b, _) in zip(c["ours"], c["ours (before)"])]
    print(f"\nLargest accuracy change of a cell, subspace solve vs before: {100 * max(diffs):.2f} pts "
          f"(test split of {len(test_y)} items: one item = {100 / len(test_y):.2f} pts).")


if __name__ == "__main__":
    main()
