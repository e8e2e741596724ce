"""``bench run`` beside the budget grid: ``--stream`` (continual learning) and ``--episodes N:K:Q:E``
(few-shot), each printing its grid (``--dry-run``) or running it, and the grid listing all modes share."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any


def print_grid(header: str, run: Sequence[Any], skips: Sequence[tuple[Any, str]]) -> int:
    """``--dry-run``: the header line, then each cell to run and each skipped cell with its reason."""
    print(header)
    for cell in run:
        print(f"  run   {cell.label()}")
    for cell, reason in skips:
        print(f"  skip  {cell.label()}: {reason}")
    return 0


def run_stream_command(cfg: Any, plugins: Any, fmt: str) -> int:
    """``bench run --stream``: dry run (the cells), or run and print the continual-learning table."""
    from bench.continual.driver import StreamRunner
    from bench.report.stream import render_streams

    runner = StreamRunner(cfg, plugins)
    if cfg.dry_run:
        cells, skips = runner.cells()
        return print_grid(f"stream {runner.stream.name} ({cfg.stream_scenario}-incremental): "
                          f"{' -> '.join(t.name for t in runner.tasks)}; {len(cells)} cells to run, "
                          f"{len(skips)} skipped", cells, skips)
    start = time.perf_counter()
    runner.run()
    print(render_streams(runner.results.load(), fmt))
    print(f"results: {runner.results.path} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


def run_episodes_command(runner: Any, fmt: str) -> int:
    """Few-shot episodes instead of budgets (bench.episodes.spec): one line for a bad spec before any work."""
    from bench.episodes.driver import cells, check, episodes_file
    from bench.report import tables as leaderboard
    from bench.report.episodes import episode_rows
    from bench.run.records import latest

    cfg = runner.cfg
    spec = check(cfg, runner.planner, runner.load_task)
    if cfg.dry_run:
        run, skips = [], []
        for name in runner.planner.task_specs:
            r, s = cells(runner.planner, spec, runner.load_task(name))
            run += r
            skips += s
        return print_grid(f"episodes: {len(run)} cells to run, {len(skips)} skipped; {spec.label} from each task's "
                          f"test split; seeds {cfg.seeds}; out {cfg.out}", run, skips)
    start = time.perf_counter()
    runner.run()
    board = {"tasks": {}, "failed": [], "skipped": [], "warnings": [],
             "episodes": episode_rows(latest(episodes_file(cfg.out).load()))}
    print(leaderboard.render(board, fmt), end="")
    print(f"results: {cfg.out / 'episodes.jsonl'} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0
