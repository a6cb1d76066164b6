"""`nons ls`: networks, coordinators and actors that answer discovery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `ls` to the parser."""
    from nons.cli._types import positive_float

    parser = commands.add_parser("ls", help="list networks, coordinators and actors ($SRV.INFO)")
    parser.add_argument(
        "--timeout", type=positive_float, default=0.5, metavar="S", help="wait for replies"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._client import run_ls

    return run_ls(context, timeout_s=args.timeout, as_json=args.json)
