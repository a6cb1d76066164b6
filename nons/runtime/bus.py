"""Requests and publishes over one NATS connection, with size checks and late-reply counting.

nats-py's `request()` drops a reply that arrives after its timeout without a trace and
checks only the payload size. The coordinator needs both facts: a late reply must be
counted (never mixed into another execution) and a message pushed over the server's
limit by its headers must become a typed error, not a closed connection. One wildcard
inbox subscription serves every request, as nats-py's own mux does, without a task
per request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from nons.core.errors import NodeUnavailableError
from nons.runtime.connection import check_message_size, max_payload

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ("Bus", "NoResponders", "ReplyTimeout")

_HEADER_ROOM = 16 * 1024
"""Room left for headers by the fast size check: W3C caps tracestate near 8.5 KB and our
own header values (trace parent, execution id) are far shorter."""

_STATUS_HEADER = "Status"
_NO_RESPONDERS = "503"

logger = logging.getLogger("nons.runtime")


class NoResponders(NodeUnavailableError):
    """Nobody subscribes to the subject (NATS status 503)."""

    type = "no_responders"


class ReplyTimeout(TimeoutError):
    """No reply before the deadline; the caller turns it into its own typed timeout."""


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
        self._subscription: Subscription | None = None
        self.late_replies = 0
        self.limit = max_payload(nc)

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
        headers: dict[str, str] | None = None,
        reply: str = "",
    ) -> None:
        """Publish after checking the whole message size.

        Raises:
            PayloadTooLargeError: payload plus headers exceed the server's max payload.
        """
        if not _surely_fits(payload, headers, self.limit):
            check_message_size(subject, payload, headers, self.limit)
        await self.nc.publish(subject, payload, reply=reply, headers=headers)

    async def request(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | None,
        timeout: float,  # noqa: ASYNC109 - a reply deadline, not a cancellation policy
    ) -> Msg:
        """Send a request and wait for its reply.

        Raises:
            PayloadTooLargeError: the request is over the server's limit.
            NoResponders: nobody serves `subject`.
            ReplyTimeout: no reply within `timeout` seconds.
        """
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._pending[token] = future
        try:
            await self.publish(subject, payload, headers, reply=self._prefix + token)
            try:
                async with asyncio.timeout(max(timeout, 0.0)):
                    msg = await future
            except TimeoutError:
                raise ReplyTimeout(f"no reply on {subject} within {timeout:.3f}s") from None
        finally:
            self._pending.pop(token, None)
        if msg.headers and not msg.data and msg.headers.get(_STATUS_HEADER) == _NO_RESPONDERS:
            raise NoResponders(f"no responders on {subject}", details={"subject": subject})
        return msg

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) :]
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
