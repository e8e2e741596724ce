"""Helpers for the issue-12 tests: a plugin of misbehaving strategies, installed by writing its
module and a ``.dist-info`` folder (entry point ``bench``) into a folder put on PYTHONPATH."""

from __future__ import annotations

import os
from pathlib import Path

PLUGIN = '''
import os
import time

import numpy as np

import bench
from bench.specs import StrategySpec
from bench.strategies import Fitted


class Behaviour:
    def __init__(self, how):
        self.how = how

    def fit(self, ctx):
        if self.how == "sleepy":
            time.sleep(float(os.environ.get("SLEEPY_S", "0.5")))
        elif self.how == "oom":
            raise MemoryError("cannot allocate 64 GiB")
        elif self.how == "cuda-oom":
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        elif self.how == "loop":
            while True:
                pass
        nan = self.how == "nan"
        return Fitted(predict=lambda split: np.full(len(split), np.nan) if nan else np.zeros(len(split), int),
                      trainable_params=0, total_params=1)


@bench.hookimpl
def bench_register_strategies():
    return [StrategySpec(name=how, description=f"misbehaves: {how}", loader=lambda how=how: Behaviour(how),
                         kind="features") for how in ("sleepy", "oom", "cuda-oom", "loop", "nan")]
'''


def misbehaving_plugin(folder: Path) -> Path:
    """Write the plugin into ``folder`` (returned, for PYTHONPATH / sys.path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_misbehaving.py").write_text(PLUGIN)
    info = folder / "bench_misbehaving-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-misbehaving\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bench]\nmisbehaving = bench_misbehaving\n")
    return folder


def toy_env(plugin_site: Path, cache: Path, *extra: Path, **env: str) -> dict[str, str]:
    """The environment of a ``bench`` subprocess that sees the toy plugin (and ``extra`` folders)."""
    path = os.pathsep.join(str(p) for p in (plugin_site, *extra))
    return {**os.environ, "PYTHONPATH": path, "BENCH_DISABLE_PLUGINS": "broken", "BENCH_CACHE_DIR": str(cache),
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env}
