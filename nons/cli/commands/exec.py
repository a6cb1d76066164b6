"""`nons exec NETWORK INPUT` (one execution) and `nons exec NETWORK --batch FILE`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `exec` to the parser."""
    from nons.cli._types import non_negative_float, positive_float, positive_int

    parser = commands.add_parser("exec", help="run one execution of a served network")
    parser.add_argument("network", metavar="NETWORK", help="network name")
    parser.add_argument("input", nargs="?", metavar="INPUT", help="text or JSON; `-` reads stdin")
    parser.add_argument("--json", action="store_true", help="print the reply as one JSON document")
    parser.add_argument(
        "--batch",
        metavar="FILE",
        help="run once per line of FILE.jsonl (`-`: stdin) instead of INPUT; --json prints "
        "one reply per line, in line order",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=8,
        metavar="N",
        help="with --batch: executions in flight at once (default 8)",
    )
    parser.add_argument("--timeout", type=positive_float, metavar="S", help="execution deadline")
    parser.add_argument("--budget", type=non_negative_float, metavar="USD", help="spending limit")
    parser.set_defaults(handler=_run, check=_check)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.input is None) == (args.batch is None):
        parser.error("exec takes either INPUT or --batch FILE")


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    if args.batch is not None:
        from nons.cli._batch import run_exec_batch

        return run_exec_batch(
            context,
            args.network,
            args.batch,
            concurrency=args.concurrency,
            as_json=args.json,
            timeout_s=args.timeout,
            budget_usd=args.budget,
        )
    from nons.cli._client import run_exec
    from nons.cli._common import read_input

    return run_exec(
        context,
        args.network,
        read_input(args.input),
        as_json=args.json,
        timeout_s=args.timeout,
        budget_usd=args.budget,
    )
