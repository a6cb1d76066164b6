"""`nons server`: the embedded nats-server in the foreground."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `server` to the parser."""
    from nons.cli._types import port, positive_int

    parser = commands.add_parser("server", help="run the embedded nats-server in the foreground")
    parser.add_argument("--port", type=port, default=4222, help="client port (0: a free one)")
    parser.add_argument("--max-payload", type=positive_int, metavar="BYTES", help="max payload")
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._serve import run_server

    return run_server(context, port=args.port, max_payload=args.max_payload)
