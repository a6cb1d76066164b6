"""Requests and publishes over one NATS connection, with size checks and late-reply counting.

nats-py's `request()` drops a reply that arrives after its timeout without a trace and
checks only the payload size. The coordinator needs both facts: a late reply must be
counted (never mixed into another execution) and a message pushed over the server's
limit by its headers must become a typed error, not a closed connection. One wildcard
inbox subscription serves every request, as nats-py's own mux does, without a task
per request. A request made with a `Liveness` also ends early, as `ReplyLost`, when
its responder goes silent for the liveness window (see `nons.runtime.liveness`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
from typing import TYPE_CHECKING

from nats import errors as nats_errors

from nons.core.errors import NodeUnavailableError
from nons.runtime.connection import check_message_size, max_payload
from nons.runtime.liveness import DURABLE, PROGRESS_HEADER

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from nons.runtime.liveness import Liveness

__all__ = ("Bus", "EncodedHeaders", "NoResponders", "ReplyLost", "ReplyTimeout")

_HEADER_ROOM = 16 * 1024
"""Room left for headers by the fast size check: W3C caps tracestate near 8.5 KB and our
own header values (trace parent, execution id) are far shorter."""

_STATUS_HEADER = "Status"
_NO_RESPONDERS = "503"

logger = logging.getLogger("nons.runtime")


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})


class EncodedHeaders:
    """Headers encoded once as a NATS header block, for the many messages that repeat them.

    nats-py encodes a header dict on every publish (a regex match, strips and encodes
    per header): a few microseconds that an execution's dozens of events and node calls
    with the same trace and execution headers would pay again each time. The block is
    the bytes nats-py would write for `values`.
    """

    __slots__ = ("block", "values")

    def __init__(self, values: dict[str, str]) -> None:
        """Encode `values` (raises `ValueError` for a header name NATS does not allow)."""
        lines = [b"NATS/1.0\r\n"]
        for name, value in values.items():
            key = name.strip()
            if not key:
                continue
            if not _HEADER_NAME.fullmatch(key):
                raise ValueError(f"invalid NATS header name {key!r}")
            lines.append(f"{key}: {value.strip().translate(_NEWLINES)}\r\n".encode())
        lines.append(b"\r\n")
        self.values = values
        """The headers as a dict (for readers, and for clients without the fast path)."""
        self.block = b"".join(lines)
        """The encoded header block."""


class NoResponders(NodeUnavailableError):
    """Nobody subscribes to the subject (NATS status 503)."""

    type = "no_responders"


class ReplyTimeout(TimeoutError):
    """No reply before the deadline; the caller turns it into its own typed timeout."""


class ReplyLost(Exception):
    """The responder went silent for the liveness window: nobody works on the request."""

    def __init__(self, message: str, silent_s: float) -> None:
        super().__init__(message)
        self.silent_s = silent_s


STALL_S = 0.25
"""A watch timer this late means our own event loop stood still (a blocking import, a
starved CPU): replies and beats may be waiting unread in the socket, so the silence
may be ours, not the responder's."""


class _Watch:
    """A liveness request's timer: ends the wait as lost when its responder goes silent.

    Progress messages only move `silent_until`; the timer, when it fires early, re-arms
    itself at the newer time (no timer churn per beat). A timer that fires late by more
    than `STALL_S` gives the responder one more interval instead of declaring it lost:
    this process, not the responder, was silent.
    """

    __slots__ = (
        "end",
        "future",
        "grace",
        "handle",
        "silent_until",
        "subject",
        "timeout",
        "window",
    )

    def __init__(
        self, future: asyncio.Future[Msg], subject: str, start: float, timeout: float, window: float
    ) -> None:
        self.future = future
        self.subject = subject
        self.timeout = timeout
        self.end = start + max(timeout, 0.0)
        self.window = window
        self.grace = window / 4
        self.silent_until = start + window
        self.handle: asyncio.TimerHandle | None = None

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        when = min(self.end, self.silent_until)
        self.handle = loop.call_at(when, self._fire, loop, when)

    def heard(self, now: float, durable: bool) -> None:
        if durable:
            # Its coordinator's death is not its end: another takes it over and replies.
            self.window = math.inf
        self.silent_until = now + self.window

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def _fire(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self.future.done():
            return
        now = loop.time()
        if now >= self.end:
            self.future.set_exception(
                ReplyTimeout(f"no reply on {self.subject} within {self.timeout:.3f}s")
            )
            return
        if now < self.silent_until:
            self.arm(loop)  # heard from since this timer was set
            return
        if now - when > STALL_S:
            self.silent_until = now + self.grace
            self.arm(loop)
            return
        self.future.set_exception(
            ReplyLost(
                f"nothing heard on {self.subject} for {self.window:.3g}s: nobody is working on it",
                silent_s=self.window,
            )
        )


class Bus:
    """A connection's request mux and size-checked publisher.

    Attributes:
        late_replies: replies that arrived after their request had given up.
    """

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._prefix = f"_INBOX.{nc._nuid.next().decode()}."
        self._tokens = itertools.count()
        self._pending: dict[str, asyncio.Future[Msg]] = {}
        self._watches: dict[str, _Watch] = {}
        self._subscription: Subscription | None = None
        self.late_replies = 0
        self.limit = max_payload(nc)
        # The pre-encoded path writes the protocol line itself, through the two methods
        # nats-py's own publish ends in; a client without them gets plain publishes.
        self._direct = callable(getattr(nc, "_send_command", None)) and callable(
            getattr(nc, "_flush_pending", None)
        )

    async def start(self) -> None:
        """Subscribe to the reply inbox."""
        self._subscription = await self.nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def close(self) -> None:
        """Stop the inbox and fail every pending request."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | EncodedHeaders | None = None,
        reply: str = "",
    ) -> None:
        """Publish after checking the whole message size.

        `EncodedHeaders` skip nats-py's per-message header encoding and subject check:
        give them only with subjects built from validated names (ours always are).

        Raises:
            PayloadTooLargeError: payload plus headers exceed the server's max payload.
        """
        if isinstance(headers, EncodedHeaders):
            if self._direct and len(headers.block) + len(payload) <= self.limit:
                await self._publish_encoded(subject, payload, headers.block, reply)
                return
            headers = headers.values  # too large (refused below, typed) or no fast path
        if not _surely_fits(payload, headers, self.limit):
            check_message_size(subject, payload, headers, self.limit)
        await self.nc.publish(subject, payload, reply=reply, headers=headers)

    async def _publish_encoded(
        self, subject: str, payload: bytes, block: bytes, reply: str
    ) -> None:
        """What `nc.publish` does with a header block already encoded (size checked by caller)."""
        nc = self.nc
        size = len(block) + len(payload)
        if nc.is_closed:
            raise nats_errors.ConnectionClosedError
        if nc.is_draining_pubs:
            raise nats_errors.ConnectionDrainingError
        if not nc.is_connected and (
            nc._max_pending_size <= 0 or len(payload) + nc._pending_data_size > nc._max_pending_size
        ):
            raise nats_errors.OutboundBufferLimitError
        line = (
            f"HPUB {subject} {reply} {len(block)} {size}\r\n"
            if reply
            else (f"HPUB {subject} {len(block)} {size}\r\n")
        )
        nc.stats["out_msgs"] += 1
        nc.stats["out_bytes"] += len(payload)
        await nc._send_command(b"".join((line.encode(), block, payload, b"\r\n")))
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()

    async def request(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | EncodedHeaders | None,
        timeout: float,  # noqa: ASYNC109 - a reply deadline, not a cancellation policy
        *,
        liveness: Liveness | None = None,
    ) -> Msg:
        """Send a request and wait for its reply.

        With `liveness`, `headers` must carry its `Nons-Liveness` header (the caller
        builds its headers once); progress messages then keep the request alive and
        are never taken for the reply.

        Raises:
            PayloadTooLargeError: the request is over the server's limit.
            NoResponders: nobody serves `subject`.
            ReplyTimeout: no reply within `timeout` seconds.
            ReplyLost: with `liveness`, nothing heard for its window before the timeout.
        """
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._pending[token] = future
        try:
            await self.publish(subject, payload, headers, reply=self._prefix + token)
            if liveness is None:
                try:
                    async with asyncio.timeout(max(timeout, 0.0)):
                        msg = await future
                except TimeoutError:
                    raise ReplyTimeout(f"no reply on {subject} within {timeout:.3f}s") from None
            else:
                msg = await self._watched(token, future, subject, timeout, liveness.window_s)
        finally:
            self._pending.pop(token, None)
        if msg.headers and not msg.data and msg.headers.get(_STATUS_HEADER) == _NO_RESPONDERS:
            raise NoResponders(f"no responders on {subject}", details={"subject": subject})
        return msg

    async def _watched(
        self,
        token: str,
        future: asyncio.Future[Msg],
        subject: str,
        timeout: float,  # noqa: ASYNC109 - a reply deadline, as in `request`
        window: float,
    ) -> Msg:
        """Wait for the reply; a progress message pushes the silence deadline back."""
        loop = asyncio.get_running_loop()
        watch = _Watch(future, subject, loop.time(), timeout, window)
        self._watches[token] = watch
        watch.arm(loop)
        try:
            return await future
        finally:
            watch.cancel()
            self._watches.pop(token, None)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) :]
        if msg.headers and PROGRESS_HEADER in msg.headers:
            watch = self._watches.get(token)
            if watch is not None:
                durable = msg.headers[PROGRESS_HEADER] == DURABLE
                watch.heard(asyncio.get_running_loop().time(), durable)
            return
        future = self._pending.get(token)
        if future is None or future.done():
            self.late_replies += 1
            logger.debug("late reply on %s dropped", msg.subject)
            return
        future.set_result(msg)


def _surely_fits(payload: bytes, headers: dict[str, str] | None, limit: int) -> bool:
    """A cheap upper bound of the message size is within the limit (the common case).

    A character is at most 4 bytes in UTF-8, so the bound is never below the exact
    size that `check_message_size` computes for the rare messages near the limit.
    """
    if len(payload) + _HEADER_ROOM <= limit and (not headers or len(headers) <= 4):
        return True
    bound = len(payload) + 12
    if headers:
        for name, value in headers.items():
            bound += 4 * (len(name) + len(value)) + 4
    return bound <= limit
