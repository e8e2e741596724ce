"""Command-line options shared by several ``bench`` commands, each declared once."""

from __future__ import annotations

import argparse
from typing import Any

from bench.errors import UserError


def csv_list(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma-separated option values)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--download`` (``bench run`` and ``bench check``).

    ``--download`` defaults to ``None`` so that ``bench run`` can tell "not given" from "off"
    and fall back to its config file.
    """
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where datasets live (torchvision and folder tasks)")
    parser.add_argument("--download", action="store_true", default=None,
                        help="let dataset tasks download their data")


def add_pretraining_index_option(parser: argparse.ArgumentParser) -> None:
    """``--pretraining-index FILE`` (repeatable; ``bench run`` and ``bench check``)."""
    parser.add_argument("--pretraining-index", action="append", default=[], metavar="FILE",
                        help="hash index of a pretraining corpus (`bench index build`) to check test "
                             "images against (repeatable)")


def parse_value(text: str) -> Any:
    """A ``--set``/``--executor-option`` value: booleans, None, int, float, else the text."""
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def resolution_option(value: Any) -> Any:
    """``--resolution``'s value parsed (:func:`bench.run.compatibility.parse_resolution`), or one line
    naming the fix."""
    from bench.run.compatibility import parse_resolution

    try:
        return parse_resolution(value)
    except ValueError as exc:
        raise UserError(f"--resolution {value}: {exc}; use a positive integer, auto, or per encoder "
                        "clip=32,dinov2=28") from None
