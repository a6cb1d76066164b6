"""The UI's NATS side: live events, the `NONS_EVENTS` history, discovery, runs, connection state.

Live events come from a plain subscription to `nons.events.>` (any server, JetStream
or not); past ones from the event stream, replayed once at start (its newest
`UiSettings.replay_events`) and looked up per execution when a page asks for an older
one. Events that arrive while the history replays are held and applied after it,
skipping those the replay already had, so nothing is counted twice. Events carry no
outputs (they may be large and private); the output of an execution comes from its
reply, which the feed has for runs started from the page and reads from the durable
record (`NONS_EXECUTIONS`) for durable ones. Everything the feed starts is a task of
its own `TaskSet`, cancelled on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from nons.core.errors import DurabilityUnavailableError
from nons.core.events import ExecutionCompleted, ExecutionFailed, decode_event
from nons.core.names import EVENTS_PREFIX, exec_subject
from nons.runtime.durability import DurableStore
from nons.runtime.event_store import EVENT_STREAM, read_execution_events
from nons.runtime.messages import ExecRequest, decode_exec_reply, encode
from nons.runtime.tasks import TaskSet
from nons.ui.board import Board
from nons.ui.discovery import discover, topology
from nons.ui.hub import Hub

if TYPE_CHECKING:
    from types import TracebackType

    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from nons.ui.settings import UiSettings

__all__ = ("Feed",)

_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
_NATS_ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)
_REPLY_MARGIN_S = 5.0
"""A run's request waits this much longer than the execution's own timeout."""

logger = logging.getLogger("nons.ui")


class Feed:
    """Owns the subscriptions and loops that keep `board` current, and tells `hub`."""

    def __init__(self, nc: Client, settings: UiSettings, *, url: str) -> None:
        """Nothing starts before `async with`."""
        self.nc = nc
        self.settings = settings
        self.url = url
        """The NATS URL (credentials removed), shown on the page."""
        self.board = Board(capacity=settings.max_executions)
        self.hub = Hub()
        self.networks: list[dict[str, Any]] = []
        self.connected = nc.is_connected
        self.history_error: str | None = None
        """Why past executions could not be read (no JetStream, no stream yet)."""
        self._services: list[dict[str, Any]] = []
        self._tasks = TaskSet()
        self._held: list[bytes] | None = []
        self._subscription: Any = None
        self._durable: DurableStore | None = None

    async def __aenter__(self) -> Feed:
        self._subscription = await self.nc.subscribe(f"{EVENTS_PREFIX}.>", cb=self._on_event)
        await self.nc.flush()
        seen = await self._replay()
        held, self._held = self._held or [], None
        for payload in held:
            if _digest(payload) not in seen:
                self._fold(payload)
        self._tasks.spawn(self._discovery_loop())
        self._tasks.spawn(self._connection_loop())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._tasks.drain(0.0)
        if self._subscription is not None:
            with contextlib.suppress(*_NATS_ERRORS):
                await self._subscription.unsubscribe()

    async def lookup(self, execution_id: str) -> dict[str, Any] | None:
        """The execution's detail: from memory, else from the event stream, else `None`."""
        view = self.board.executions.get(execution_id)
        if view is None:
            try:
                events = await read_execution_events(
                    self.nc, execution_id, timeout_s=self.settings.lookup_timeout_s
                )
            except (LookupError, *_NATS_ERRORS):
                return None
            if not events:
                return None
            self.board.apply_all(events)
            view = self.board.executions.get(execution_id)
        if view is None:
            return None
        if view.finished and not view.output_known:
            await self._attach_durable_reply(execution_id)
        return view.detail()

    def start_run(self, network: str, value: object, *, timeout_s: float) -> str:
        """Run `network` on `value` from the page; returns the execution id at once.

        The reply (the output, node outputs, cache savings, which events do not carry)
        is attached to the execution when it arrives.
        """
        execution_id = uuid.uuid4().hex
        request = ExecRequest(input=value, execution_id=execution_id, timeout_s=timeout_s)
        self._tasks.spawn(self._run(network, execution_id, encode(request), timeout_s))
        return execution_id

    def snapshot(self) -> dict[str, Any]:
        """What a page needs on load: status, networks, executions and totals."""
        return {
            "status": self.status(),
            "networks": self.networks,
            "executions": self.board.summaries(),
            "totals": self.board.totals(),
            "jaeger_url": self.settings.jaeger_url,
        }

    def status(self) -> dict[str, Any]:
        """The connection's state, for the banner."""
        return {"connected": self.connected, "url": self.url, "history": self.history_error}

    async def _run(self, network: str, execution_id: str, payload: bytes, timeout_s: float) -> None:
        try:
            msg = await self.nc.request(
                exec_subject(network), payload, timeout=timeout_s + _REPLY_MARGIN_S
            )
            reply = decode_exec_reply(msg.data)
        except nats.errors.NoRespondersError:
            self._run_failed(execution_id, network, "no_responders", f"nobody serves {network}")
            return
        except (*_NATS_ERRORS, *_DECODE_ERRORS, ValueError) as exc:
            self._run_failed(execution_id, network, "no_reply", f"no usable reply: {exc!s:.200}")
            return
        self.hub.execution_changed(self.board.attach_reply(reply))

    def _run_failed(self, execution_id: str, network: str, kind: str, message: str) -> None:
        view = self.board.execution(execution_id, network)
        if not view.finished:
            view.status, view.error = "failed", {"type": kind, "message": message}
        self.hub.execution_changed(execution_id)

    async def _on_event(self, msg: Msg) -> None:
        if self._held is not None:
            self._held.append(msg.data)
            return
        self._fold(msg.data)

    def _fold(self, payload: bytes) -> None:
        try:
            event = decode_event(payload)
        except _DECODE_ERRORS:
            logger.debug("skipping a malformed event")
            return
        changed = self.board.apply(event)
        if changed is not None:
            self.hub.execution_changed(changed)
            if isinstance(event, (ExecutionCompleted, ExecutionFailed)) and self.hub.watching(
                changed
            ):
                self._tasks.spawn(self._attach_durable_reply(changed))
        elif event.type == "circuit.changed":
            self.networks = topology(self._services, self.board)
            self.hub.networks_changed()

    async def _attach_durable_reply(self, execution_id: str) -> None:
        """Add the output of a finished durable execution from its record, when it has one."""
        view = self.board.executions.get(execution_id)
        if view is None or view.output_known:
            return
        try:
            if self._durable is None:
                self._durable = await DurableStore.open(self.nc, create=False)
            found = await asyncio.wait_for(
                self._durable.get(execution_id), self.settings.lookup_timeout_s
            )
        except (DurabilityUnavailableError, *_NATS_ERRORS, *_DECODE_ERRORS):
            return  # not durable (or no JetStream): the output stays with the caller
        if found is not None and found[0].reply is not None:
            self.hub.execution_changed(self.board.attach_reply(found[0].reply))

    async def _replay(self) -> set[bytes]:
        """Fold the newest recorded events in; the digests of those it read."""
        seen: set[bytes] = set()
        js = self.nc.jetstream()
        try:
            info = await js.stream_info(EVENT_STREAM)
        except (nats.js.errors.Error, *_NATS_ERRORS):
            self.history_error = f"no {EVENT_STREAM} stream on this server yet: live events only"
            return seen
        last = info.state.last_seq
        if info.state.messages == 0:
            return seen
        start = max(info.state.first_seq, last - self.settings.replay_events + 1)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        subscription = await js.subscribe(
            f"{EVENTS_PREFIX}.>", stream=EVENT_STREAM, ordered_consumer=True, config=config
        )
        try:
            while True:
                try:
                    msg = await subscription.next_msg(timeout=self.settings.lookup_timeout_s)
                except nats.errors.TimeoutError:
                    break
                seen.add(_digest(msg.data))
                self._fold(msg.data)
                if msg.metadata.sequence.stream >= last or msg.metadata.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(*_NATS_ERRORS):
                await subscription.unsubscribe()
        return seen

    async def _discovery_loop(self) -> None:
        while True:
            if self.nc.is_connected:
                try:
                    self._services = await discover(self.nc, self.settings.discovery_wait_s)
                except _NATS_ERRORS:
                    logger.debug("discovery failed; retrying", exc_info=True)
                networks = topology(self._services, self.board)
                if networks != self.networks:
                    self.networks = networks
                    self.hub.networks_changed()
            await asyncio.sleep(self.settings.discovery_interval_s)

    async def _connection_loop(self) -> None:
        while True:
            connected = self.nc.is_connected
            if connected != self.connected:
                self.connected = connected
                self.hub.status_changed()
            await asyncio.sleep(self.settings.status_interval_s)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()
