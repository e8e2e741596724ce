"""The ``bench`` command line.

    bench run [--encoders A,B] [--strategies S,T] [--tasks X,Y] [--budgets 1,5,n100,full]
              [--seeds N] [--out DIR] [--device auto|cpu|cuda] [--weights NAME=PATH] [-c run.toml]
              [--dry-run] [--executor local]
    bench list {encoders,strategies,tasks,executors,plugins} [--json]
    bench leaderboard DIR... [--format github|html|csv|latex|json]
    bench publish DIR... --site leaderboard/
    bench check TASK [--json]        bench index build FOLDER -o FILE
    bench cache {info,clear}
    bench tune STRATEGY --task T --encoder E [--option KEY=V1,V2] [--budgets 10,20] [--seeds 2]
    bench rank --tasks T --encoders A,B [--budget 10] [--seeds N] [--against RUN_DIR] [--json]

User mistakes exit with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from bench import __version__
from bench.cli.board import add_board_parsers, cmd_cache, cmd_leaderboard, cmd_publish, cmd_validate
from bench.cli.check import add_check_parsers, cmd_check, cmd_index
from bench.cli.listing import add_list_parser, cmd_list
from bench.cli.rank import add_rank_parser, cmd_rank
from bench.cli.run import add_run_parser, cmd_run, run_config_from_args
from bench.cli.safe_output import SafeStream, escape_controls
from bench.cli.tune import add_tune_parser, cmd_tune
from bench.errors import PluginError, UserError

__all__ = ["build_parser", "main", "run_config_from_args"]

COMMANDS = {"run": cmd_run, "list": cmd_list, "leaderboard": cmd_leaderboard, "publish": cmd_publish,
            "cache": cmd_cache, "check": cmd_check, "index": cmd_index, "tune": cmd_tune,
            "rank": cmd_rank, "validate": cmd_validate}


def build_parser() -> argparse.ArgumentParser:
    """The ``bench`` parser: one sub-command per entry of :data:`COMMANDS`."""
    p = argparse.ArgumentParser(prog="bench", description="transfer-bench: how well does a pre-trained encoder "
                                "transfer, under label budgets and domain shift, and is the score contaminated?")
    p.add_argument("--version", action="version", version=f"transfer-bench {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_run_parser(sub)
    add_list_parser(sub)
    add_board_parsers(sub)
    add_check_parsers(sub)
    add_tune_parser(sub)
    add_rank_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """The console script: parse, run one command; user mistakes exit 2 with one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    # what plugins and results files supply is escaped on stdout; stderr keeps the progress bar's
    # carriage returns, and the one-line errors below escape their own text
    stdout = sys.stdout
    sys.stdout = SafeStream(stdout)
    try:
        return _run(args)
    finally:
        sys.stdout = stdout


def _run(args: argparse.Namespace) -> int:
    try:
        return int(COMMANDS[args.command](args) or 0)
    except (UserError, PluginError) as exc:
        print(f"bench: error: {escape_controls(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `bench list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("bench: interrupted; finished cells are saved, run the same command again to resume", file=sys.stderr)
        return 130
