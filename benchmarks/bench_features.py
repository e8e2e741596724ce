"""Feature cache benchmark: what one encoder pass costs, and what the cache saves.

Measures, in one process: the cold encoder pass over mnist5k's pool and test (5,000 images) with
EfficientNet-Lite0 at the default 64 px, the warm read of the same features from the cache, and a
linear-probe cell (10/class) on cached features. Prints a Markdown section for BENCHMARKS.md.

    python benchmarks/bench_features.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import time


def main() -> None:
    import numpy as np
    import torch

    from bench.plugins import load_plugins
    from bench.probe import FeatureScale, fit_logistic
    from bench.run.budgets import parse_budget, sample
    from bench.run.features import FeatureCache
    from bench.specs import EncoderRequest, TaskRequest

    plugins = load_plugins()
    task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
    enc = plugins.encoders.get("efficientnet-lite0").load(EncoderRequest(name="efficientnet-lite0", resolution=64))
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(os.path.join(tmp, "features"))
        t = time.perf_counter()
        fingerprint = enc.fingerprint()
        t_fp = time.perf_counter() - t
        t = time.perf_counter()
        train = cache.get(enc, task.train)
        test = cache.get(enc, task.test)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        cache2 = FeatureCache(os.path.join(tmp, "features"))  # a new run: nothing in memory
        enc._fingerprint = None
        train2 = cache2.get(enc, task.train)
        cache2.get(enc, task.test)
        warm = time.perf_counter() - t
        assert np.array_equal(train, train2) and cache2.hits == 2 and fingerprint
        pos = sample(task.train.labels, task.classes, "mnist5k", parse_budget("10"), 0)
        t = time.perf_counter()
        scale = FeatureScale.fit(train[pos])  # the linear-probe strategy's scaling and default C
        clf = fit_logistic(scale(train[pos]), task.train.labels[pos], 100.0, 2000, 0)
        acc = (clf.predict(scale(test)) == task.test.labels).mean()
        probe = time.perf_counter() - t
    print("## Feature cache\n")
    print(f"Command: `python benchmarks/bench_features.py`. Machine: {platform.machine()} Linux, "
          f"{os.cpu_count()} CPU cores, torch {torch.__version__} (CPU, {torch.get_num_threads()} threads).\n")
    print("| step | seconds |\n|---|---|")
    print(f"| weight fingerprint (content hash of 3.4M parameters) | {t_fp:.2f} |")
    print(f"| cold: encode 5,000 mnist5k images at 64 px | {cold:.2f} |")
    print(f"| warm: read the same features from the cache (new cache object) | {warm:.3f} |")
    print(f"| linear-probe cell on cached features (10/class, accuracy {acc:.3f}) | {probe:.2f} |")
    print(f"\nWarm/cold ratio: {warm / cold:.4f} (the cache makes the encoder pass {cold / warm:.0f}x cheaper); "
          f"a probe cell costs {probe / cold:.2f} of one encoder pass, so every probe cell after the first "
          "reuses the pass instead of repeating it.")


if __name__ == "__main__":
    main()
