"""Choose the linear probe's default ``C`` on a carve-out of the training pool (never a test split).

For each encoder, mnist5k's pool is split (stratified, seed 0) into 80% to draw budgets from and
20% to validate on; 10/class budgets at seeds 0-2 are drawn from the 80% with bench.run.budgets, the
probe (bench.probe.FeatureScale + logistic regression) is fitted for every C in C_GRID, and the
mean validation accuracy decides, per encoder and for the one default (mean over encoders).
Test accuracy (old unit-norm probe at C=10 vs the new default) is printed for the record only, after the choice.

    OMP_NUM_THREADS=1 python benchmarks/probe_C.py [encoder ...]   # default: pixels efficientnet-lite0
"""

from __future__ import annotations

import sys


def main(encoders: list[str]) -> None:
    import numpy as np
    import torch

    from bench.encoders import encode
    from bench.plugins import load_plugins
    from bench.probe import FeatureScale, fit_logistic, l2_normalise
    from bench.run.budgets import parse_budget, pool_digest, sample
    from bench.specs import EncoderRequest, TaskRequest
    from bench.tasks import stratified_split
    from bench_plugins.strategies.linear_probe import C_GRID

    torch.set_num_threads(1)
    plugins = load_plugins()
    task = plugins.tasks.get("mnist5k").load(TaskRequest(name="mnist5k"))
    y_pool = np.asarray(task.train.labels)
    fit_pos, val_pos = stratified_split(y_pool, 0.2, seed=0)
    digest = pool_digest(y_pool[fit_pos], [task.train.ids[i] for i in fit_pos])
    budgets = {s: fit_pos[sample(y_pool[fit_pos], task.classes, "carve", parse_budget("10"), s, pool=digest)]
               for s in range(3)}
    by_encoder = []
    for name in encoders:
        size = 28 if name == "pixels" else 64
        enc = plugins.encoders.get(name).load(EncoderRequest(name=name, resolution=size, native_size=28))
        x_pool = encode(enc, task.train.images, len(task.train))
        scores = []
        for C in C_GRID:
            acc = []
            for pos in budgets.values():
                scale = FeatureScale.fit(x_pool[pos])
                clf = fit_logistic(scale(x_pool[pos]), y_pool[pos], C, 2000, 0)
                acc.append((clf.predict(scale(x_pool[val_pos])) == y_pool[val_pos]).mean())
            scores.append(float(np.mean(acc)))
        best = C_GRID[int(np.argmax(scores))]
        by_encoder.append(scores)
        print(f"{name}: validation accuracy by C " + ", ".join(f"{c}: {a:.3f}" for c, a in zip(C_GRID, scores))
              + f" -> C = {best}")
        x_test = encode(enc, task.test.images, len(task.test))
        y_test = np.asarray(task.test.labels)
        full = pool_digest(y_pool, task.train.ids)
        old, new = [], []
        for s in range(3):  # reported after the choice, never used for it
            pos = sample(y_pool, task.classes, "mnist5k", parse_budget("10"), s, pool=full)
            clf = fit_logistic(l2_normalise(x_pool[pos]), y_pool[pos], 10.0, 2000, 0)
            old.append((clf.predict(l2_normalise(x_test)) == y_test).mean())
            scale = FeatureScale.fit(x_pool[pos])
            clf = fit_logistic(scale(x_pool[pos]), y_pool[pos], best, 2000, 0)
            new.append((clf.predict(scale(x_test)) == y_test).mean())
        print(f"{name}: mnist5k test, 10/class, seeds 0-2: unit-norm C=10 {np.mean(old):.3f} {np.round(old, 3)}; "
              f"global scale C={best} {np.mean(new):.3f} {np.round(new, 3)}")
    mean = np.mean(by_encoder, axis=0)
    print("default C (mean validation accuracy over the encoders): "
          + ", ".join(f"{c}: {a:.4f}" for c, a in zip(C_GRID, mean)) + f" -> C = {C_GRID[int(np.argmax(mean))]}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["pixels", "efficientnet-lite0"])
