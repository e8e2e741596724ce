"""Figure 6: peak memory (RSS) of an encode pass through the feature cache.

Two passes, each in a fresh process (so the peak is that pass's): the default run's (mnist5k pool
and test, 6,000 images, EfficientNet-Lite0 at 64 px) and a 50,000-image one (the first 50,000 of
Fashion-MNIST's official train split, same encoder). Peak RSS is sampled every 10 ms and checked
against ``ru_maxrss``; "before" is the process with the images and the model loaded. The cache
streams when the growth is the features array plus a batch's activations, not the images.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_memory.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

MB = 2**20


def one(kind: str) -> dict[str, float]:
    import numpy as np
    import psutil
    import torch

    torch.set_num_threads(1)
    from bench.plugins import load_plugins
    from bench.run.features import FeatureCache
    from bench.specs import EncoderRequest, TaskRequest
    from bench.tasks import ArraySplit

    plugins = load_plugins()
    if kind == "default":
        task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
        splits = [task.train, task.test]
    else:
        from bench_plugins.tasks import fashion_mnist_data as fm

        images, labels = fm.read_split(fm.locate(TaskRequest(name="fashion-mnist")), "train")
        images, labels = images[:50_000], labels[:50_000]
        splits = [ArraySplit([f"fashion-mnist/train/{i}" for i in range(len(images))], images, labels)]
    enc = plugins.encoders.get("efficientnet-lite0").load(EncoderRequest(name="efficientnet-lite0", resolution=64))
    enc.fingerprint()
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    n = sum(len(s) for s in splits)
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(os.path.join(tmp, "features"))
        t = time.perf_counter()
        feats = [cache.get(enc, s) for s in splits]
        wall = time.perf_counter() - t
    stop.set()
    sampler.join()
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"images": n, "before_mb": before / MB, "peak_mb": max(peak[0], maxrss) / MB,
            "features_mb": sum(f.nbytes for f in feats) / MB, "images_mb": sum(
                np.asarray(s.images(range(1))[0]).nbytes * len(s) for s in splits) / MB, "wall_s": wall}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2])))
        return
    rows = {}
    for kind in ("default", "fashion50k"):
        out = subprocess.run([sys.executable, __file__, "--one", kind], capture_output=True, text=True, check=True)
        rows[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    import torch

    print("## Peak memory of an encode pass (figure 6)\n")
    print(f"Command: `OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_memory.py`. Machine: "
          f"{platform.machine()} Linux, {os.cpu_count()} CPU cores shared with other jobs, torch {torch.__version__} "
          "(CPU, 1 thread). EfficientNet-Lite0 at 64 px, batch 256, through the feature cache (cold).\n")
    print("| pass | images | RSS before (MB) | peak RSS (MB) | growth (MB) | features (MB) | images as uint8 (MB) "
          "| growth - features (MB) | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    names = {"default": "default run (mnist5k pool + test)", "fashion50k": "Fashion-MNIST train, first 50,000"}
    for kind, r in rows.items():
        growth = r["peak_mb"] - r["before_mb"]
        print(f"| {names[kind]} | {r['images']:,} | {r['before_mb']:.0f} | {r['peak_mb']:.0f} | {growth:.0f} "
              f"| {r['features_mb']:.0f} | {r['images_mb']:.0f} | {growth - r['features_mb']:.0f} "
              f"| {r['wall_s']:.0f} |")


if __name__ == "__main__":
    main()
