"""``bench run --episodes N:K:Q:E``: check the spec, then print the episode grid (``--dry-run``) or run it."""

from __future__ import annotations

import sys
import time
from typing import Any


def run_episodes_command(runner: Any, fmt: str) -> int:
    """Few-shot episodes instead of budgets (bench.episodes): one line for a bad spec before any work."""
    from bench import leaderboard
    from bench.board_episodes import episode_rows
    from bench.episode_runner import cells, check, episodes_file
    from bench.results import latest

    cfg = runner.cfg
    spec = check(cfg, runner.planner, runner.load_task)
    if cfg.dry_run:
        run, skips = [], []
        for name in runner.planner.task_specs:
            r, s = cells(runner.planner, spec, runner.load_task(name))
            run += r
            skips += s
        print(f"episodes: {len(run)} cells to run, {len(skips)} skipped; {spec.label} from each task's test split; "
              f"seeds {cfg.seeds}; out {cfg.out}")
        for cell in run:
            print(f"  run   {cell.label()}")
        for cell, reason in skips:
            print(f"  skip  {cell.label()}: {reason}")
        return 0
    start = time.perf_counter()
    runner.run()
    board = {"tasks": {}, "failed": [], "skipped": [], "warnings": [],
             "episodes": episode_rows(latest(episodes_file(cfg.out).load()))}
    print(leaderboard.render(board, fmt), end="")
    print(f"results: {cfg.out / 'episodes.jsonl'} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0
