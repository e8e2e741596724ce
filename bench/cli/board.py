"""``bench leaderboard``, ``bench publish`` and ``bench cache``: what is done with finished runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.errors import UserError


def add_board_parsers(sub: Any) -> None:
    """``bench leaderboard DIR...``, ``bench publish DIR... --site DIR`` and ``bench cache {info,clear}``."""
    lb = sub.add_parser("leaderboard", help="tables from one or more run folders")
    lb.add_argument("dirs", nargs="+", metavar="DIR")
    lb.add_argument("--format", default="github", help="github (default), html, csv, latex, json")

    pub = sub.add_parser("publish", help="write a static leaderboard site (index.html, results.jsonl, plots)")
    pub.add_argument("dirs", nargs="+", metavar="DIR")
    pub.add_argument("--site", required=True, help="output folder, e.g. leaderboard/")

    c = sub.add_parser("cache", help="inspect or clear the feature cache")
    c.add_argument("action", choices=["info", "clear"])


def check_format(fmt: str) -> None:
    """Fail with one line, before any work, when ``fmt`` is not a leaderboard format."""
    from bench import leaderboard

    if fmt not in leaderboard.FORMATS:
        raise UserError(f"unknown format {fmt!r}; use one of {', '.join(leaderboard.FORMATS)}")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench import leaderboard

    check_format(args.format)
    board = leaderboard.aggregate(leaderboard.load_records(args.dirs))
    print(leaderboard.render(board, args.format), end="")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from bench import leaderboard

    site = leaderboard.publish(args.dirs, Path(args.site))
    print(f"wrote {site / 'index.html'}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from bench.features import FeatureCache

    cache = FeatureCache()
    if args.action == "clear":
        print(f"removed {cache.clear()} cached feature files from {cache.root}")
    else:
        s = cache.stats()
        print(f"{cache.root}: {s['entries']} feature files, {s['bytes'] / 2**20:.1f} MiB")
    return 0
