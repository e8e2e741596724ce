"""What ``bench run`` prints in each mode (budget grid, ``--stream``, ``--episodes N:K:Q:E``, ``--multitask``):
its grid (``--dry-run``, one listing all modes share) or, after running it, its table; the mode and its driver
come from :mod:`bench.run.dispatch`."""

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


def run_command(cfg: Any, plugins: Any, fmt: str) -> int:
    """``bench run``: the driver of the config's mode (bench.run.dispatch), then that mode's output."""
    from bench.run import dispatch

    runner = dispatch.driver(cfg, plugins)
    commands = {"grid": run_grid_command, "stream": run_stream_command, "episodes": run_episodes_command,
                "multitask": run_multitask_command}
    return commands[dispatch.mode(cfg)](runner, fmt)


def run_grid_command(runner: Any, fmt: str) -> int:
    """The budget grid: dry run (the cells and skips), or run and print the leaderboard."""
    from bench.report import tables as leaderboard

    cfg = runner.cfg
    if cfg.dry_run:
        plan = runner.plan()
        return print_grid(f"grid: {len(plan.cells)} cells to run, {len(plan.skips)} skipped; budgets "
                          f"{', '.join(b.label for b in plan.budgets)}; seeds {cfg.seeds}; out {cfg.out}",
                          plan.cells, plan.skips)
    start = time.perf_counter()
    before_first_cell(runner)
    runner.run()
    elapsed = time.perf_counter() - start
    from bench.report.runs import load

    board = leaderboard.aggregate(load([cfg.out]))
    print(leaderboard.render(board, fmt))
    print(f"results: {cfg.out / 'results.jsonl'} ({elapsed:.0f} s)", file=sys.stderr)
    return 0


def run_stream_command(runner: Any, fmt: str) -> int:
    """``bench run --stream``: dry run (the cells), or run and print the continual-learning table."""
    from bench.report.stream import render_streams

    cfg = runner.cfg
    if cfg.dry_run:
        cells, skips = runner.cells()
        return print_grid(f"stream {runner.stream.name} ({cfg.stream_scenario}-incremental): "
                          f"{' -> '.join(t.name for t in runner.tasks)}; {len(cells)} cells to run, "
                          f"{len(skips)} skipped", cells, skips)
    start = time.perf_counter()
    prefetch_weights(runner)
    runner.run()
    print(render_streams(runner.results.load(), fmt))
    print(f"results: {runner.results.path} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


def run_multitask_command(runner: Any, fmt: str) -> int:
    """``bench run --multitask``: dry run (the paired single-task cells, then the multi-task cells), or run
    and print the multi-task table."""
    from bench.report import multitask, tables
    from bench.report.runs import Runs

    cfg = runner.cfg
    if cfg.dry_run:
        plan = runner.reference().plan()
        print_grid(f"single-task finetune (the paired reference): {len(plan.cells)} cells to run", plan.cells, [])
        cells, skips = runner.cells()
        return print_grid(f"multitask {runner.name}: {len(cells)} cells to run, {len(skips)} skipped; budgets "
                          f"{', '.join(b.label for b in runner.planner.budgets)}; seeds {cfg.seeds}; out {cfg.out}",
                          cells, skips)
    start = time.perf_counter()
    runner.run()
    board = {"tasks": {}, "failed": [], "skipped": [], "warnings": [],
             **multitask.collect(Runs.of(runner.results.load()))}
    print(tables.render(board, fmt), end="")
    print(f"results: {runner.results.path} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


def run_episodes_command(runner: Any, fmt: str) -> int:
    """Few-shot episodes instead of budgets (bench.episodes.spec): one line for a bad spec before any work."""
    from bench.episodes.driver import cells, check, episodes_file
    from bench.report import tables as leaderboard
    from bench.report.episodes import episode_rows
    from bench.report.meta import meta_rows
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
                          f"novel classes (test split); seeds {cfg.seeds}; out {cfg.out}", run, skips)
    start = time.perf_counter()
    prefetch_weights(runner)
    runner.run()
    rows = episode_rows(latest(episodes_file(cfg.out).load()))
    board = {"tasks": {}, "failed": [], "skipped": [], "warnings": [], "episodes": rows, "meta": meta_rows(rows)}
    print(leaderboard.render(board, fmt), end="")
    print(f"results: {cfg.out / 'episodes.jsonl'} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


def before_first_cell(runner: Any) -> None:
    """Every encoder's weights resolved (downloaded or failed in one line) before the first cell,
    then one line per large encoder estimating its CPU time (bench.weights, bench.run.estimate)."""
    from bench.run.estimate import cpu_estimates
    from bench.run.worker import load_encoder

    prefetch_weights(runner)
    cpu_estimates(runner, load_encoder, lambda line: print(line, file=sys.stderr))


def prefetch_weights(runner: Any) -> None:
    """Every encoder's weights of any mode's run resolved before its first cell (bench.weights.prefetch)."""
    from bench.weights import prefetch

    prefetch(runner.plugins.encoders, list(runner.planner.encoder_specs), runner.cfg.weights)
