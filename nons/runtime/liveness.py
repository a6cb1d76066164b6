"""Liveness of a request while it is worked on: the responder's progress beats.

A request carrying `Nons-Liveness: <seconds>` asks its responder to publish an empty
progress message (header `Nons-Progress`) on the request's reply subject every that
many seconds while it works on it. A caller that hears nothing (no progress, no reply)
for its liveness window knows nobody is working on the request: the responder died,
or the request never reached one. A long model call keeps beating, so it is never
mistaken for a lost one. A call that ends within one interval sends no beat, so the
common, fast call pays only for the header; and `nats req`, which sends no such
header, gets its single reply as before.

`Bus.request(..., liveness=...)` is the caller's side; `Heartbeats` the responder's.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nons.runtime.tasks import TaskSet

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.msg import Msg

    Publish = Callable[[str, bytes, dict[str, str]], Awaitable[None]]
    """`Bus.publish`: subject, payload, headers."""

__all__ = (
    "LIVENESS_HEADER",
    "DURABLE",
    "PROGRESS_HEADER",
    "Heartbeats",
    "Liveness",
    "requested_interval",
)

LIVENESS_HEADER = "Nons-Liveness"
"""Request header: send progress on my reply subject every this many seconds."""

PROGRESS_HEADER = "Nons-Progress"
"""Header of a progress message (empty body): the request is still being worked on."""

BEATS_PER_WINDOW = 4
"""Beats a caller asks for per liveness window: three may be late before a call is lost."""

MIN_INTERVAL_S = 0.05
"""Shortest interval a responder beats at, whatever a request asks (a flood guard)."""

MAX_INTERVAL_S = 300.0
"""Longest interval a responder accepts."""

_PROGRESS = {PROGRESS_HEADER: "working"}
DURABLE = "durable"
"""Progress value of a durable execution: if its coordinator goes silent, another one
takes it over and replies, so the caller keeps waiting instead of giving it up."""
_DURABLE = {PROGRESS_HEADER: DURABLE}

logger = logging.getLogger("nons.runtime")


@dataclass(frozen=True, slots=True)
class Liveness:
    """A caller's liveness window: silence this long means nobody works on the request."""

    window_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise ValueError("a liveness window must be a positive number of seconds")

    @property
    def interval_s(self) -> float:
        """The progress interval the caller asks its responder for."""
        return max(self.window_s / BEATS_PER_WINDOW, MIN_INTERVAL_S)

    @property
    def header(self) -> str:
        """The `Nons-Liveness` header value."""
        return f"{self.interval_s:.6g}"


def requested_interval(headers: dict[str, str] | None) -> float | None:
    """The progress interval a request asks for, clamped; None when it asks for none."""
    if not headers:
        return None
    value = headers.get(LIVENESS_HEADER)
    if value is None:
        return None
    try:
        interval = float(value)
    except ValueError:
        return None
    if not math.isfinite(interval) or interval <= 0:
        return None
    return min(max(interval, MIN_INTERVAL_S), MAX_INTERVAL_S)


@dataclass(slots=True)
class _Beat:
    """One request being beaten for: where, how often, and when next (loop time)."""

    reply: str
    interval: float
    due: float
    headers: dict[str, str]


class Heartbeats:
    """Sends progress for every request a service is working on that asked for it.

    One timer serves all of them (not a task per request): it fires at the earliest
    due beat, publishes every beat then due in one task, and re-arms itself while
    any request is registered.
    """

    def __init__(self, publish: Publish) -> None:
        """Beat through `publish` (a `Bus.publish`: size-checked, on its connection)."""
        self._publish = publish
        self._keys = itertools.count()
        self._beating: dict[int, _Beat] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._sends = TaskSet()
        self.sent = 0
        """Progress messages published (for tests and stats)."""

    def start(self, msg: Msg) -> int | None:
        """Beat for `msg` from now on if it asks for it; the key to `stop` it, or None."""
        interval = requested_interval(msg.headers)
        if interval is None or not msg.reply:
            return None
        loop = asyncio.get_running_loop()
        key = next(self._keys)
        due = loop.time() + interval
        self._beating[key] = _Beat(msg.reply, interval, due, _PROGRESS)
        if self._timer is None or due < self._timer.when():
            self._arm(loop, due)
        return key

    async def mark_durable(self, key: int | None) -> None:
        """Beat `durable` for this request from now on, starting with one beat at once."""
        beat = self._beating.get(key) if key is not None else None
        if beat is None:
            return
        beat.headers = _DURABLE
        await self._publish(beat.reply, b"", _DURABLE)

    def stop(self, key: int | None) -> None:
        """Stop beating for a request (its reply is about to be sent)."""
        if key is not None:
            self._beating.pop(key, None)

    async def close(self) -> None:
        """Stop every beat and wait (briefly) for the last sends."""
        self._beating.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._sends.drain(1.0)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._beat)

    def _beat(self) -> None:
        self._timer = None
        if not self._beating:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        due: list[tuple[str, dict[str, str]]] = []
        earliest = math.inf
        for beat in self._beating.values():
            if beat.due <= now:
                due.append((beat.reply, beat.headers))
                beat.due = now + beat.interval
            earliest = min(earliest, beat.due)
        if due:
            self._sends.spawn(self._send(due))
        self._arm(loop, earliest)

    async def _send(self, replies: list[tuple[str, dict[str, str]]]) -> None:
        for reply, headers in replies:
            try:
                await self._publish(reply, b"", headers)
            except Exception:  # a closed connection: the reply will not arrive either
                logger.debug("progress on %s not sent", reply, exc_info=True)
                return
            self.sent += 1
