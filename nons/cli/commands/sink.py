"""`nons sink postgres|jsonl`: record execution events in PostgreSQL or a JSON-lines file.

Both read the JetStream stream `NONS_EVENTS` through a durable consumer, so a sink
that stops resumes where it stopped. The consumer's default name is derived from the
destination (the file's path, the DSN without its password) and the network, so two
sinks writing to different places never share a position by accident.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nons.cli._common import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, connect, emit, stop_event
from nons.cli._types import positive_float, positive_int
from nons.runtime.event_store import ensure_event_stream
from nons.sinks._consume import SinkSettings, SinkUnavailableError, run_sink

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers
    from nons.sinks._consume import EventWriter, SinkStats

__all__ = ("register", "sink_command")


def register(commands: Subparsers) -> None:
    """Add `sink postgres` and `sink jsonl` to the `nons` parser."""
    sink = commands.add_parser("sink", help="record execution events (PostgreSQL, JSON lines)")
    kinds = sink.add_subparsers(dest="sink_kind", metavar="KIND", required=True)
    postgres = kinds.add_parser("postgres", help="record executions in PostgreSQL tables")
    postgres.add_argument(
        "--dsn",
        required=True,
        metavar="DSN",
        help="postgresql://USER@HOST:PORT/DATABASE (keep the password in $PGPASSWORD "
        "or ~/.pgpass rather than on the command line)",
    )
    postgres.add_argument(
        "--max-outage",
        type=positive_float,
        default=600.0,
        metavar="S",
        help="give up when the database stays unreachable this long (default 600)",
    )
    jsonl = kinds.add_parser("jsonl", help="append events to FILE as JSON lines")
    jsonl.add_argument("file", metavar="FILE", help="output file (FILE.pos records its position)")
    for parser in (postgres, jsonl):
        parser.add_argument("network", nargs="?", metavar="NETWORK", help="default: all")
        parser.add_argument(
            "--name", metavar="NAME", help="sink name: the durable consumer nons-sink-NAME"
        )
        parser.add_argument("--count", type=positive_int, metavar="N", help="stop after N events")
        parser.add_argument(
            "--timeout", type=positive_float, metavar="S", help="stop after S idle seconds"
        )
        parser.add_argument(
            "--nats-url", metavar="URL", default=argparse.SUPPRESS, help="NATS server"
        )
    sink.set_defaults(handler=sink_command)


def sink_command(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """The coroutine that runs the sink `args` describe."""
    common: dict[str, Any] = {"count": args.count, "timeout_s": args.timeout}
    if args.sink_kind == "postgres":
        return run_postgres(
            context,
            args.dsn,
            args.network,
            name=args.name,
            max_outage_s=args.max_outage,
            **common,
        )
    path = str(Path(args.file).resolve())  # the default sink name is derived from it
    return run_jsonl(context, path, args.network, name=args.name, **common)


async def run_jsonl(
    context: CliContext,
    path: str,
    network: str | None,
    *,
    name: str | None,
    count: int | None,
    timeout_s: float | None,
) -> int:
    """Append events to `path` (absolute) until stopped; exit 3 when NATS has no JetStream."""
    from nons.sinks.jsonl import JsonlSink

    settings = _settings("jsonl", path, network, name, count, timeout_s)
    async with JsonlSink(path) as sink:
        stats = await _run(context, "jsonl", sink, settings, path)
        if stats is None:
            return EXIT_UNAVAILABLE
        emit(
            f"nons sink jsonl: {stats.events} events ({sink.written} written, "
            f"{sink.duplicates} already there); stopped: {stats.stopped_by}"
        )
    return EXIT_OK


async def run_postgres(
    context: CliContext,
    dsn: str,
    network: str | None,
    *,
    name: str | None,
    count: int | None,
    timeout_s: float | None,
    max_outage_s: float,
) -> int:
    """Record events in PostgreSQL until stopped; exit 3 when it stays unreachable."""
    import asyncpg

    from nons.sinks.postgres import PostgresSettings, PostgresSink

    database = PostgresSettings(dsn=dsn, max_outage_s=max_outage_s)
    where = database.redacted_dsn
    settings = _settings("postgres", where, network, name, count, timeout_s)
    try:
        async with PostgresSink(database) as sink:
            stats = await _run(context, "postgres", sink, settings, where)
            if stats is None:
                return EXIT_UNAVAILABLE
            emit(
                f"nons sink postgres: {stats.events} events ({sink.written} recorded, "
                f"{sink.duplicates} already there, {sink.reconnects} reconnects); "
                f"stopped: {stats.stopped_by}"
            )
    except SinkUnavailableError as exc:
        emit(f"nons sink postgres: {exc}", sys.stderr)
        return EXIT_UNAVAILABLE
    except asyncpg.PostgresError as exc:  # e.g. no permission on the tables: nothing acked
        emit(f"nons sink postgres: PostgreSQL refused: {type(exc).__name__}: {exc}", sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _run(
    context: CliContext, kind: str, writer: EventWriter, settings: SinkSettings, where: str
) -> SinkStats | None:
    """Connect, announce, consume; `None` (after saying why) when the sink is unavailable."""
    stop = stop_event()
    nc = await connect(context, f"nons-sink-{kind}")
    try:
        await ensure_event_stream(nc, needed_for="a sink")  # fail in one line, before the banner
        emit(
            f"nons sink {kind}: recording {settings.filter_subject} into {where} "
            f"(consumer {settings.durable})"
        )
        return await run_sink(nc, writer, settings, stop=stop)
    except SinkUnavailableError as exc:
        emit(f"nons sink {kind}: {exc}", sys.stderr)
        return None
    finally:
        await nc.close()


def _settings(
    kind: str,
    destination: str,
    network: str | None,
    name: str | None,
    count: int | None,
    timeout_s: float | None,
) -> SinkSettings:
    if name is None:
        digest = hashlib.sha256(destination.encode()).hexdigest()[:10]
        name = f"{kind}-{(network or 'all')[:64]}-{digest}"
    return SinkSettings(name=name, network=network, max_events=count, idle_timeout_s=timeout_s)
