"""Shared test set-up: no network, a private cache, small thread counts, the fixture plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("BENCH_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Every test run gets its own feature/contamination cache (never the user's)."""
    old = os.environ.get("BENCH_CACHE_DIR")
    os.environ["BENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("bench-cache"))
    yield
    if old is None:
        os.environ.pop("BENCH_CACHE_DIR", None)
    else:
        os.environ["BENCH_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The fixture plugin packages bench-toy and bench-broken, really installed with pip into a
    private folder (not the test environment), for use on PYTHONPATH / sys.path."""
    target = tmp_path_factory.mktemp("site")
    for name in ("bench-toy", "bench-broken"):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--no-index", "--target", str(target), str(FIXTURES / name)],
            check=True, capture_output=True, text=True,
        )
    return target


@pytest.fixture
def with_plugins(plugin_site, monkeypatch):
    """sys.path includes the fixture plugins, so entry-point discovery finds them in-process."""
    monkeypatch.syspath_prepend(str(plugin_site))
    import importlib

    importlib.invalidate_caches()
    return plugin_site


def run_cli(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m bench ARGV`` in a subprocess (what a user runs), capturing output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True, env=full_env, cwd=cwd)
