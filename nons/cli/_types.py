"""argparse value types shared by the `nons` subcommands: typed, with messages that say why."""

from __future__ import annotations

import argparse
from typing import TypeAlias

__all__ = (
    "Subparsers",
    "add_concurrency",
    "add_targets",
    "finite_float",
    "non_negative_float",
    "port",
    "positive_float",
    "positive_int",
)


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What `ArgumentParser.add_subparsers()` returns: where each command registers."""


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port (0 picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is within 0..65535, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (seconds, mostly)."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of at least 0 (a budget)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def finite_float(text: str) -> float:
    """A finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_targets(parser: argparse.ArgumentParser) -> None:
    """The `TARGET...` argument of the serving commands."""
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="MODULE:ATTRIBUTE (a NoN, a list of them or a factory) or a .json/.yaml spec file",
    )


def add_concurrency(parser: argparse.ArgumentParser) -> None:
    """`--concurrency N` of the commands that host actors."""
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=64,
        metavar="N",
        help="calls of one node running at once in this process (default 64)",
    )
