"""Resilience-test helpers: spec files, `nons` process clusters and a counting exec client.

`ExecClient` sends each request with a reply subject of its own
(`<inbox>.<execution_id>`) on one wildcard subscription, so it counts every reply an
execution gets (nats-py's `request()` would silently drop a second one) and sees the
server's "no responders" status as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import yaml

from tests.support.processes import NonsProcess, nons_env, nons_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence
    from pathlib import Path

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = (
    "READY_S",
    "TERMINAL_EVENTS",
    "ExecClient",
    "ExecOutcome",
    "child_env",
    "layer",
    "start_actor",
    "start_coordinator",
    "unique_name",
    "write_spec",
)

READY_S = 30.0
"""Bound on a process's startup (interpreter, imports, connect)."""

TERMINAL_EVENTS = frozenset({"execution.completed", "execution.failed"})
"""Event types that end an execution."""

_NO_RESPONDERS = "503"


def unique_name(prefix: str) -> str:
    """A network name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def child_env(**overrides: str) -> dict[str, str]:
    """A child's environment: offline (mock provider), no URL or keys unless given."""
    env = nons_env()
    for name in (
        "NONS_NATS_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "NONS_DEFAULT_PROVIDER",
        "OPENAI_API_KEY",
        "NONS_MOCK_FAILURE_RATE",
        "NONS_MOCK_LATENCY_S",
    ):
        env.pop(name, None)
    env.update(overrides)
    return env


def layer(*nodes: dict[str, Any], **config: Any) -> dict[str, Any]:
    """One layer of a spec file: its nodes and its `LayerConfig` fields."""
    return {"nodes": list(nodes), "config": config}


def write_spec(
    tmp_path: Path, name: str, layers: Sequence[dict[str, Any]], **network_config: Any
) -> str:
    """Write a `NetworkSpec` YAML file for `name` into `tmp_path`; returns its path."""
    document: dict[str, Any] = {"name": name, "layers": list(layers)}
    if network_config:
        document["config"] = network_config
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return str(path)


def start_actor(
    stack: contextlib.ExitStack,
    url: str,
    target: str,
    tmp_path: Path,
    *,
    name: str,
    env: Mapping[str, str] | None = None,
    concurrency: int = 64,
    extra: Sequence[str] = (),
) -> NonsProcess:
    """`nons actor` for `target`, stopped (by PID) when `stack` closes."""
    args = [*extra, "--nats-url", url, "actor", target, "--concurrency", str(concurrency)]
    environment = env if env is not None else child_env()
    return stack.enter_context(nons_process(args, tmp_path=tmp_path, env=environment, name=name))


def start_coordinator(
    stack: contextlib.ExitStack,
    url: str,
    target: str,
    tmp_path: Path,
    *,
    name: str = "coordinator",
    env: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
    options: Sequence[str] = (),
) -> NonsProcess:
    """`nons coordinator` for `target` (`extra`: global flags, `options`: the command's),
    stopped (by PID) when `stack` closes."""
    args = [*extra, "--nats-url", url, "coordinator", target, *options]
    environment = env if env is not None else child_env()
    return stack.enter_context(nons_process(args, tmp_path=tmp_path, env=environment, name=name))


class ExecOutcome:
    """What one request got: its first reply, or why none came."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.reply: dict[str, Any] | None = None
        self.problem: str | None = None
        """`no_responders` or `timeout` when no reply came."""

    @property
    def status(self) -> str:
        """The reply's status, else the problem."""
        if self.reply is not None:
            return str(self.reply["status"])
        return self.problem or "pending"


class ExecClient:
    """Sends exec requests and counts replies and terminal events per execution id."""

    def __init__(self, nc: Client, network: str) -> None:
        self.nc = nc
        self.network = network
        self.inbox = nc.new_inbox()
        self.replies: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.no_responders: Counter[str] = Counter()
        self.terminal: defaultdict[str, list[str]] = defaultdict(list)
        self.retries: Counter[str] = Counter()
        """`node.retrying` events by the error that caused them."""
        self.retry_reasons: Counter[str] = Counter()
        """`node.retrying` events by their `reason` (`error`, `fallback`, `node_lost`)."""
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._subscriptions: list[Subscription] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ExecClient]:
        """Subscribe to the reply inbox and the network's execution and retry events."""
        events = f"nons.events.{self.network}.*"
        self._subscriptions = [
            await self.nc.subscribe(f"{self.inbox}.*", cb=self._on_reply),
            await self.nc.subscribe(f"{events}.execution.*", cb=self._on_event),
            await self.nc.subscribe(f"{events}.node.retrying", cb=self._on_retry),
        ]
        await self.nc.flush()
        try:
            yield self
        finally:
            for subscription in self._subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def execute(
        self,
        payload: Any,
        *,
        timeout: float,  # noqa: ASYNC109 - a reply deadline, like nc.request's
        execution_id: str | None = None,
        request_timeout_s: float | None = None,
    ) -> ExecOutcome:
        """One execution with a client-chosen id; never raises for a missing reply."""
        execution_id = execution_id or uuid.uuid4().hex
        body: dict[str, Any] = {"input": payload, "execution_id": execution_id}
        if request_timeout_s is not None:
            body["timeout_s"] = request_timeout_s
        outcome = ExecOutcome(execution_id)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[execution_id] = waiter
        try:
            await self.nc.publish(
                f"nons.exec.{self.network}",
                json.dumps(body).encode(),
                reply=f"{self.inbox}.{execution_id}",
            )
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            outcome.problem = "timeout"
        finally:
            self._waiters.pop(execution_id, None)
        if self.replies[execution_id]:
            outcome.reply = self.replies[execution_id][0]
        elif self.no_responders[execution_id]:
            outcome.problem = "no_responders"
        return outcome

    def replies_total(self) -> int:
        """Replies received so far, duplicates included."""
        return sum(len(replies) for replies in self.replies.values())

    async def _on_reply(self, msg: Msg) -> None:
        execution_id = msg.subject.rsplit(".", 1)[-1]
        headers = msg.headers or {}
        if not msg.data and headers.get("Status") == _NO_RESPONDERS:
            self.no_responders[execution_id] += 1
        else:
            self.replies[execution_id].append(json.loads(msg.data))
        waiter = self._waiters.get(execution_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _on_event(self, msg: Msg) -> None:
        event = json.loads(msg.data)
        if event["type"] in TERMINAL_EVENTS:
            self.terminal[event["execution_id"]].append(event["type"])

    async def _on_retry(self, msg: Msg) -> None:
        event = json.loads(msg.data)
        self.retries[event["error"]["type"]] += 1
        self.retry_reasons[event.get("reason", "error")] += 1
