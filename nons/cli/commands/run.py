"""`nons run TARGET INPUT`: serve TARGET in this process and run it once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `run` to the parser."""
    parser = commands.add_parser("run", help="serve TARGET in this process and run it once")
    parser.add_argument("target", metavar="TARGET", help="MODULE:ATTRIBUTE or a spec file")
    parser.add_argument("input", metavar="INPUT", help="text or JSON; `-` reads stdin")
    parser.add_argument("--network", metavar="NAME", help="which network, when TARGET has several")
    parser.add_argument("--json", action="store_true", help="print the reply as one JSON document")
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._client import run_network
    from nons.cli._common import read_input

    return run_network(
        context, [args.target], read_input(args.input), network=args.network, as_json=args.json
    )
