"""The `nons` command (also `python -m nons`): serve, run and watch networks over NATS.

This module is the edge: it reads the environment once (`NONS_NATS_URL`, the provider
and `OTEL_*` variables) into a `CliContext` and hands that value to the subcommands.
Exit codes: 0 success (a partial result too, with a warning), 1 a failed execution,
2 bad arguments or configuration, 3 no NATS server, no coordinator or no reply.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

from nons import __version__
from nons._cli_common import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliContext,
    emit,
    parse_input,
)
from nons._cli_sink import add_sink_parser, sink_command
from nons._cli_types import non_negative_float, port, positive_float, positive_int
from nons.core.errors import ConfigurationError, ExecutionError, NetworkUnavailableError
from nons.runtime.connection import URL_ENV_VAR, NatsUnavailableError

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping, Sequence
    from typing import Any

__all__ = ("build_parser", "main")

PROG = "nons"
"""The command's name in help and error messages."""

_LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `nons` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="NoN: compound AI networks run as an actor runtime on NATS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--nats-url",
        metavar="URL",
        help=f"NATS server (default: ${URL_ENV_VAR}; `up` and `run` start an embedded "
        "server when neither is set, other commands use nats://127.0.0.1:4222)",
    )
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, default="warning", help="logging level (stderr)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser("up", help="coordinator and actors for TARGETs in one process")
    _targets(up)
    _concurrency(up)
    up.add_argument("--no-events", action="store_true", help="do not publish execution events")

    coordinator = commands.add_parser("coordinator", help="serve nons.exec.<network> subjects")
    _targets(coordinator)

    actor = commands.add_parser("actor", help="serve nons.node.<network>.<node> subjects")
    _targets(actor)
    actor.add_argument(
        "--node",
        dest="nodes",
        action="append",
        default=[],
        metavar="ID",
        help="serve only this node (repeatable; default: every node)",
    )
    _concurrency(actor)

    exec_ = commands.add_parser("exec", help="run one execution of a served network")
    exec_.add_argument("network", metavar="NETWORK", help="network name")
    exec_.add_argument("input", nargs="?", metavar="INPUT", help="text or JSON; `-` reads stdin")
    exec_.add_argument("--json", action="store_true", help="print the reply as one JSON document")
    exec_.add_argument(
        "--batch",
        metavar="FILE",
        help="run once per line of FILE.jsonl (`-`: stdin) instead of INPUT; --json prints "
        "one reply per line, in line order",
    )
    exec_.add_argument(
        "--concurrency",
        type=positive_int,
        default=8,
        metavar="N",
        help="with --batch: executions in flight at once (default 8)",
    )
    exec_.add_argument("--timeout", type=positive_float, metavar="S", help="execution deadline")
    exec_.add_argument("--budget", type=non_negative_float, metavar="USD", help="spending limit")

    events = commands.add_parser("events", help="tail execution events")
    events.add_argument("network", nargs="?", metavar="NETWORK", help="network (default: all)")
    events.add_argument("--execution", metavar="ID", help="only this execution")
    events.add_argument("--json", action="store_true", help="print JSON lines")
    events.add_argument("--count", type=positive_int, metavar="N", help="stop after N events")
    events.add_argument("--timeout", type=positive_float, metavar="S", help="stop after S seconds")

    ls = commands.add_parser("ls", help="list networks, coordinators and actors ($SRV.INFO)")
    ls.add_argument(
        "--timeout", type=positive_float, default=0.5, metavar="S", help="wait for replies"
    )
    ls.add_argument("--json", action="store_true", help="print one JSON document")

    trace = commands.add_parser("trace", help="an execution's tree of layers and nodes")
    trace.add_argument("execution_id", metavar="EXECUTION_ID", help="the execution's id")
    trace.add_argument("--network", metavar="NAME", help="network (faster lookup)")
    trace.add_argument(
        "--timeout", type=positive_float, default=2.0, metavar="S", help="wait for events"
    )

    server = commands.add_parser("server", help="run the embedded nats-server in the foreground")
    server.add_argument("--port", type=port, default=4222, help="client port (0: a free one)")
    server.add_argument("--max-payload", type=positive_int, metavar="BYTES", help="max payload")

    run = commands.add_parser("run", help="serve TARGET in this process and run it once")
    run.add_argument("target", metavar="TARGET", help="MODULE:ATTRIBUTE or a spec file")
    run.add_argument("input", metavar="INPUT", help="text or JSON; `-` reads stdin")
    run.add_argument("--network", metavar="NAME", help="which network, when TARGET has several")
    run.add_argument("--json", action="store_true", help="print the reply as one JSON document")
    add_sink_parser(commands)
    for command in commands.choices.values():
        # Also accepted after the command (`nons exec --nats-url URL ...`), as users type it.
        command.add_argument(
            "--nats-url", metavar="URL", default=argparse.SUPPRESS, help="NATS server"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `nons` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "exec" and (args.input is None) == (args.batch is None):
        parser.error("exec takes either INPUT or --batch FILE")
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        context = _context(args.nats_url, os.environ)
        return _dispatch(args, context)
    except (NatsUnavailableError, NetworkUnavailableError) as exc:
        emit(f"{PROG} {args.command}: {exc}", sys.stderr)
        return EXIT_UNAVAILABLE
    except ConfigurationError as exc:
        emit(f"{PROG} {args.command}: error: {exc}", sys.stderr)
        return EXIT_USAGE
    except ExecutionError as exc:
        emit(f"{PROG} {args.command}: {exc.type}: {exc.message}", sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _context(url_argument: str | None, environ: Mapping[str, str]) -> CliContext:
    """Read the configuration once: argument, then environment, then default."""
    from nons.core.scheduler import SchedulerSettings
    from nons.observability.setup import TracingSettings
    from nons.providers.mock import MockBehaviour
    from nons.providers.settings import ProviderSettings
    from nons.runtime.server import binary_from_env

    url = (url_argument or "").strip() or environ.get(URL_ENV_VAR, "").strip() or None
    if url is not None:
        from nons.runtime.connection import ConnectionSettings

        ConnectionSettings(url=url)  # validates the URL (raises ConfigurationError)
    otel = {key: value for key, value in environ.items() if key.startswith("OTEL_")}
    TracingSettings.from_env(otel)  # fail on bad OTEL_* values before anything starts
    return CliContext(
        nats_url=url,
        providers=ProviderSettings.from_env(environ),
        mock=MockBehaviour.from_env(environ),
        scheduler=SchedulerSettings.from_env(environ),
        server_binary=binary_from_env(environ),
        telemetry_environ=otel,
    )


def _dispatch(args: argparse.Namespace, context: CliContext) -> int:
    from nons import _cli_client as client
    from nons import _cli_serve as serve

    command: str = args.command
    coroutine: Coroutine[Any, Any, int]
    if command == "up":
        coroutine = serve.run_up(
            context, args.targets, concurrency=args.concurrency, events=not args.no_events
        )
    elif command == "coordinator":
        coroutine = serve.run_coordinator(context, args.targets)
    elif command == "actor":
        coroutine = serve.run_actor(
            context, args.targets, node_ids=args.nodes, concurrency=args.concurrency
        )
    elif command == "server":
        port = args.port
        coroutine = serve.run_server(context, port=port, max_payload=args.max_payload)
    elif command == "exec" and args.batch is not None:
        from nons._cli_batch import run_exec_batch

        coroutine = run_exec_batch(
            context,
            args.network,
            args.batch,
            concurrency=args.concurrency,
            as_json=args.json,
            timeout_s=args.timeout,
            budget_usd=args.budget,
        )
    elif command == "exec":
        coroutine = client.run_exec(
            context,
            args.network,
            _read_input(args.input),
            as_json=args.json,
            timeout_s=args.timeout,
            budget_usd=args.budget,
        )
    elif command == "events":
        coroutine = client.run_events(
            context,
            args.network,
            args.execution,
            as_json=args.json,
            count=args.count,
            timeout_s=args.timeout,
        )
    elif command == "trace":
        from nons._cli_trace import run_trace

        coroutine = run_trace(
            context, args.execution_id, network=args.network, timeout_s=args.timeout
        )
    elif command == "sink":
        coroutine = sink_command(context, args)
    elif command == "ls":
        coroutine = client.run_ls(context, timeout_s=args.timeout, as_json=args.json)
    else:
        coroutine = client.run_network(
            context,
            [args.target],
            _read_input(args.input),
            network=args.network,
            as_json=args.json,
        )
    return asyncio.run(coroutine)


def _read_input(text: str) -> object:
    """INPUT as sent: `-` reads stdin; JSON when it parses as JSON, else text."""
    if text == "-":
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]
    return parse_input(text)


def _targets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="MODULE:ATTRIBUTE (a NoN, a list of them or a factory) or a .json/.yaml spec file",
    )


def _concurrency(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=64,
        metavar="N",
        help="calls of one node running at once in this process (default 64)",
    )
