"""Recording executions: the docs' `DatabaseIntegratedNetwork`, done by an event sink.

The NoN docs wrap `forward()` to insert a row per execution into PostgreSQL by hand.
Here the coordinator already records every execution's events in the JetStream stream
`NONS_EVENTS`, and a sink turns them into records, exactly once and resuming where it
stopped, without touching the network's code:

* `nons sink postgres --dsn postgresql://USER@HOST/DB [NETWORK]` keeps the tables
  `nons_executions` (status, timings, tokens, cost, error per execution),
  `nons_node_calls` and `nons_events` (it creates them);
* `nons sink jsonl FILE [NETWORK]` appends each event's JSON to a file.

Run it as `python examples/database_sink.py`. Without ANTHROPIC_API_KEY it runs
offline on the mock provider (and says so). It runs three executions (one fails on
purpose), then the JSON-lines sink in-process (`nons.sinks.run_sink` with a
`JsonlSink`) until no event came for a second, and prints the records and, from them,
one row per execution, as `nons_executions` holds it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nons
from examples._report import MOCK_NOTICE
from nons import Node, NoN
from nons.client.local import embedded_server
from nons.runtime.connection import URL_ENV_VAR
from nons.runtime.event_store import EVENT_STREAM
from nons.sinks import JsonlSink, SinkSettings, run_sink

if TYPE_CHECKING:
    from nons.core.types import Content

network = NoN.from_operators(
    [
        Node("transform", transformation_type="summarise the message in one sentence"),
        Node("classify", categories=["bug", "billing", "question"]),
    ],
    name="database-sink",
)
"""The network whose executions are recorded: `nons up examples.database_sink:network`."""

_COMMON = frozenset({"type", "ts", "network", "execution_id", "trace_id", "span_id"})
"""Fields every event line has (not repeated when printing one)."""

INPUTS: list[Content] = [
    "The invoice PDF shows last month's address.",
    "How do I add a second admin to our workspace?",
    {"content": "x", "bogus": 1},  # not what `transform` accepts: a recorded failure
]


def execution_rows(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per execution from its events, as the PostgreSQL sink's `nons_executions`."""
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        row = rows.setdefault(line["execution_id"], {"status": "running", "events": 0})
        row["events"] += 1
        if line["type"] == "execution.completed":
            row.update(status=line["status"], tokens=line["usage"]["total_tokens"])
            row.update(cost=line["cost_usd"], ms=line["duration_ms"])
        elif line["type"] == "execution.failed":
            row.update(status="failed", error=line["error"]["type"], ms=line["duration_ms"])
    return rows


async def record(url: str, path: Path) -> list[dict[str, Any]]:
    """Run the JSON-lines sink over this network's recorded events; return the lines."""
    # A sink name is a durable consumer (a position in the stream): a new one starts at
    # the oldest recorded event. `nons sink` keeps its consumer so it can resume.
    settings = SinkSettings(
        name=f"example-{uuid.uuid4().hex[:8]}", network=network.name, idle_timeout_s=1.0
    )
    client = await nons.connect(url)
    try:
        async with JsonlSink(path) as sink:
            stats = await run_sink(client.nc, sink, settings)
        print(
            f"sink: {stats.events} events in {stats.batches} batches, stopped by {stats.stopped_by}"
        )
        await client.nc.jetstream().delete_consumer(EVENT_STREAM, settings.durable)
    finally:
        await client.close()
    text = await asyncio.to_thread(path.read_text)
    return [json.loads(line) for line in text.splitlines()]


async def main() -> None:
    results = await network.forward_batch(INPUTS, concurrency=1)  # failures are results too
    ours = {result.execution_id for result in results}
    for result in results:
        print(f"ran {result.execution_id}: {result.status}")

    url = os.environ.get(URL_ENV_VAR) or (await asyncio.to_thread(embedded_server)).url
    with tempfile.TemporaryDirectory() as directory:
        lines = await record(url, Path(directory) / "events.jsonl")
    lines = [line for line in lines if line["execution_id"] in ours]  # a shared server has more

    print(f"\n{len(lines)} recorded lines of these executions; the first execution's:")
    first = lines[0]["execution_id"]
    for line in lines:
        if line["execution_id"] == first:
            detail = {key: value for key, value in line.items() if key not in _COMMON}
            print(f"  {line['type']:<20} {json.dumps(detail)[:78]}")
    print("\nexecution_id                      status     events tokens cost       error")
    for execution_id, row in execution_rows(lines).items():
        print(
            f"{execution_id:<33} {row['status']:<10} {row['events']:>6} {row.get('tokens', 0):>6} "
            f"${row.get('cost', 0.0):.6f}  {row.get('error', '')}"
        )
    print("\nfor PostgreSQL: nons sink postgres --dsn postgresql://USER@HOST/DB database-sink")
    if any(result.is_mock for result in results):
        print(MOCK_NOTICE)


if __name__ == "__main__":
    asyncio.run(main())
