"""Event-driven execution: callbacks on a network's events, and the live event stream.

The NoN docs wrap a network in a hand-written `EventDrivenNetwork` that publishes
`execution_started`, `execution_completed` and `execution_failed` to its subscribers.
Here every execution publishes its events on NATS already
(`nons.events.<network>.<execution_id>.<type>`), so the docs' class comes down to:

* `network.subscribe(event_type, callback)`: sync or async callbacks, run in this
  process while `forward()` runs. A callback that raises is logged and never breaks
  the execution (the docs' `publish_event` swallows callback errors the same way).
* `async for event in client.events(network)`: the raw stream, as any NATS client in
  any language (or `nons events event-driven`) sees it.

Run it as `python examples/event_driven.py`. Without ANTHROPIC_API_KEY it runs offline
on the mock provider (and says so). The second input is malformed on purpose: its
execution fails, `execution.failed` reaches the callbacks, and `forward()` raises the
typed error, as the docs' `forward_with_events` re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import MOCK_NOTICE
from nons import ExecutionError, Node, NoN
from nons.client.local import LocalRuntime, embedded_server
from nons.observability.events import (
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    NodeCompleted,
)
from nons.runtime.connection import URL_ENV_VAR

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from nons.client import Client
    from nons.core.types import Content
    from nons.observability.events import Event

network = NoN.from_operators(
    [
        Node("transform", transformation_type="summarise the message in one sentence"),
        Node("classify", categories=["bug", "billing", "question"]),
    ],
    name="event-driven",
)
"""Summarise, then classify: `nons up examples.event_driven:network` serves it."""

INPUTS: list[Content] = [
    "The export button does nothing since Tuesday and my report is due tomorrow.",
    {"content": "x", "bogus": 1},  # not what `transform` accepts: this execution fails
]

TERMINAL = frozenset({"execution.completed", "execution.failed"})
"""The event types that end an execution."""


# The docs' callbacks are async; sync ones work too (`on_node` is one).
async def on_started(event: Event) -> None:
    assert isinstance(event, ExecutionStarted)
    print(f"[callback] execution.started   {event.execution_id[:8]} ({event.layers} layers)")


def on_node(event: Event) -> None:
    assert isinstance(event, NodeCompleted)
    print(
        f"[callback] node.completed      {event.node_id:<14} {event.duration_ms:6.1f} ms "
        f"{event.usage.total_tokens:4d} tokens"
    )


async def on_completed(event: Event) -> None:
    assert isinstance(event, ExecutionCompleted)
    print(
        f"[callback] execution.completed {event.execution_id[:8]} {event.status}, "
        f"${event.cost_usd:.6f}, mock={event.is_mock}"
    )


async def on_failed(event: Event) -> None:
    assert isinstance(event, ExecutionFailed)
    print(f"[callback] execution.failed    {event.execution_id[:8]} {event.error.type}")


network.subscribe("execution.started", on_started)
network.subscribe("node.completed", on_node)
network.subscribe("execution.completed", on_completed)
network.subscribe("execution.failed", on_failed)


async def watch(client: Client, executions: int) -> int:
    """Print the network's event stream until `executions` executions ended."""
    seen = ended = 0
    # `events()` is an async generator: closing it unsubscribes at once.
    stream = cast("AsyncGenerator[Event, None]", client.events(network.name))
    async with contextlib.aclosing(stream) as events:
        async for event in events:
            seen += 1
            print(f"[stream]   {event.type:<19} {event.execution_id[:8]}")
            ended += event.type in TERMINAL
            if ended == executions:
                break
    return seen


async def main() -> None:
    # forward() would start the embedded server by itself; the stream needs its URL.
    url = os.environ.get(URL_ENV_VAR) or (await asyncio.to_thread(embedded_server)).url
    async with LocalRuntime(url) as runtime:
        assert runtime.client is not None
        watcher = asyncio.create_task(watch(runtime.client, len(INPUTS)))
        # Let the watcher subscribe; it shares the runtime's connection, so its
        # subscription reaches the server before any request sent after it.
        await asyncio.sleep(0)
        mock = False
        for value in INPUTS:
            print(f"\nforward({value!r})")
            try:
                result = await network.forward(value, client=runtime)
            except ExecutionError as exc:  # raised for a failed execution, after its events
                print(f"-> raised {type(exc).__name__} ({exc.type}): {exc}")
            else:
                mock = mock or result.is_mock
                print(f"-> {result.status}: {result.output!r}")
        seen = await asyncio.wait_for(watcher, timeout=10)
        print(f"\nthe stream carried {seen} events of {len(INPUTS)} executions")
    if mock:
        print(MOCK_NOTICE)


if __name__ == "__main__":
    asyncio.run(main())
