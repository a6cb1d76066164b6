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
        default=None,
        metavar="N",
        help="with --batch: executions in flight at once (default 8; 256 with --mode batch)",
    )
    parser.add_argument(
        "--mode",
        choices=("online", "batch"),
        default="online",
        help="with --batch: `batch` sends each layer's model calls as one Message Batch "
        "(half price, answers within 24 h; Anthropic models only)",
    )
    parser.add_argument("--timeout", type=positive_float, metavar="S", help="execution deadline")
    parser.add_argument("--budget", type=non_negative_float, metavar="USD", help="spending limit")
    parser.set_defaults(handler=_run, check=_check)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.input is None) == (args.batch is None):
        parser.error("exec takes either INPUT or --batch FILE")
    if args.mode == "batch" and args.batch is None:
        parser.error("--mode batch needs --batch FILE (one execution is not a batch)")


ONLINE_BATCH_CONCURRENCY = 8


def batch_concurrency(args: argparse.Namespace) -> int:
    """`--concurrency`, else 8 online and 256 in batch mode.

    A Message Batch is only worth its wait when it carries many executions' calls at once.
    """
    from nons.core.modes import DEFAULT_BATCH_CONCURRENCY

    if args.concurrency is not None:
        return int(args.concurrency)
    return DEFAULT_BATCH_CONCURRENCY if args.mode == "batch" else ONLINE_BATCH_CONCURRENCY


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    if args.batch is not None:
        from nons.cli._batch import run_exec_batch

        return run_exec_batch(
            context,
            args.network,
            args.batch,
            concurrency=batch_concurrency(args),
            mode=args.mode,
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
