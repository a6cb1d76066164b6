"""Request liveness over a real nats-server: progress keeps a long request alive, silence
ends it as lost within the window, and a request that asks for no progress gets none.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import pytest

from nons.runtime.bus import Bus, ReplyLost, ReplyTimeout
from nons.runtime.liveness import (
    LIVENESS_HEADER,
    MIN_INTERVAL_S,
    PROGRESS_HEADER,
    Heartbeats,
    Liveness,
    requested_interval,
)
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client
    from nats.aio.msg import Msg


@contextlib.asynccontextmanager
async def responder(
    nc: Client, subject: str, work_s: float, *, answer: bool = True
) -> AsyncIterator[Heartbeats]:
    """Serves `subject`: beats while it "works" `work_s` seconds, then replies (or not)."""
    bus = Bus(nc)
    heartbeats = Heartbeats(bus.publish)
    tasks: set[asyncio.Task[None]] = set()

    async def work(msg: Msg) -> None:
        beat = heartbeats.start(msg)
        await asyncio.sleep(work_s)
        heartbeats.stop(beat)
        if answer:
            await bus.publish(msg.reply, b"done")

    async def on_request(msg: Msg) -> None:
        task = asyncio.ensure_future(work(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    subscription = await nc.subscribe(subject, cb=on_request)
    await nc.flush()
    try:
        yield heartbeats
    finally:
        await subscription.unsubscribe()
        for task in tasks:
            task.cancel()
        await heartbeats.close()


@contextlib.asynccontextmanager
async def caller(nc: Client) -> AsyncIterator[Bus]:
    bus = Bus(nc)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


LIVE = Liveness(0.4)
ASKING = {LIVENESS_HEADER: LIVE.header}


async def test_progress_keeps_a_request_alive_for_many_windows(nc: Client) -> None:
    async with responder(nc, "live.slow", work_s=1.4) as beats, caller(nc) as bus:
        started = time.monotonic()
        msg = await bus.request("live.slow", b"go", ASKING, 10.0, liveness=LIVE)
        elapsed = time.monotonic() - started
    assert msg.data == b"done"  # the progress messages were not taken for the reply
    assert elapsed >= 1.4  # 3.5 windows
    assert beats.sent >= 1.4 / LIVE.interval_s - 2, beats.sent


async def test_a_silent_responder_is_lost_within_the_window(nc: Client) -> None:
    # The responder takes the request and dies (here: never beats, never answers).
    async def swallow(msg: Msg) -> None:
        return None

    subscription = await nc.subscribe("live.dead", cb=swallow)
    try:
        async with caller(nc) as bus:
            started = time.monotonic()
            with pytest.raises(ReplyLost) as lost:
                await bus.request("live.dead", b"go", ASKING, 30.0, liveness=LIVE)
            elapsed = time.monotonic() - started
    finally:
        await subscription.unsubscribe()
    assert LIVE.window_s <= elapsed < LIVE.window_s + 1.0
    assert lost.value.silent_s == LIVE.window_s


async def test_a_responder_that_stops_beating_is_lost(nc: Client) -> None:
    async with responder(nc, "live.stops", work_s=60.0, answer=False) as beats:
        async with caller(nc) as bus:
            task = asyncio.ensure_future(
                bus.request("live.stops", b"go", ASKING, 30.0, liveness=LIVE)
            )
            await wait_until(lambda: beats.sent >= 3, timeout=5)
            await beats.close()  # the responder "dies" after three beats
            stopped = time.monotonic()
            with pytest.raises(ReplyLost):
                await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - stopped < LIVE.window_s + 1.0


async def test_a_stall_of_our_own_loop_is_not_a_lost_responder(nc: Client) -> None:
    """A blocking import or a starved CPU stops our loop past the window; the reply that
    arrived meanwhile waits in the socket. It is read, not given up as lost."""
    async with responder(nc, "live.stalled", work_s=0.05), caller(nc) as bus:
        request = asyncio.ensure_future(
            bus.request("live.stalled", b"go", ASKING, 10.0, liveness=LIVE)
        )
        await asyncio.sleep(0.01)  # the request is out
        # The whole loop stands still on purpose: beats and the reply stay unread.
        time.sleep(LIVE.window_s * 2)  # noqa: ASYNC251
        msg = await asyncio.wait_for(request, timeout=5)
    assert msg.data == b"done"


async def test_the_deadline_before_the_window_is_a_timeout(nc: Client) -> None:
    async with responder(nc, "live.late", work_s=5.0), caller(nc) as bus:
        with pytest.raises(ReplyTimeout):
            await bus.request("live.late", b"go", ASKING, 0.2, liveness=Liveness(30.0))


async def test_the_deadline_ends_a_beating_request_as_a_timeout(nc: Client) -> None:
    async with responder(nc, "live.beating", work_s=5.0), caller(nc) as bus:
        with pytest.raises(ReplyTimeout):
            await bus.request("live.beating", b"go", ASKING, 1.0, liveness=LIVE)


async def test_a_plain_request_gets_one_message_and_no_progress(nc: Client) -> None:
    """What `nats req` sends (no `Nons-Liveness`): its inbox sees the reply only."""
    received: list[Msg] = []
    inbox = nc.new_inbox()

    async def on_message(msg: Msg) -> None:
        received.append(msg)

    async with responder(nc, "live.plain", work_s=0.5) as beats:
        subscription = await nc.subscribe(inbox, cb=on_message)
        await nc.publish("live.plain", b"go", reply=inbox)
        await wait_until(lambda: received, timeout=5)
        await nc.flush()
        await subscription.unsubscribe()
    assert [m.data for m in received] == [b"done"]
    assert beats.sent == 0


async def test_progress_messages_are_empty_and_marked(nc: Client) -> None:
    received: list[Msg] = []
    inbox = nc.new_inbox()

    async def on_message(msg: Msg) -> None:
        received.append(msg)

    async with responder(nc, "live.marked", work_s=0.5):
        subscription = await nc.subscribe(inbox, cb=on_message)
        await nc.publish("live.marked", b"go", reply=inbox, headers={LIVENESS_HEADER: "0.1"})
        await wait_until(lambda: any(m.data == b"done" for m in received), timeout=5)
        await subscription.unsubscribe()
    progress, final = received[:-1], received[-1]
    assert len(progress) >= 2
    assert all(m.data == b"" and m.headers == {PROGRESS_HEADER: "working"} for m in progress)
    assert final.data == b"done"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 0.5), ("0", None), ("-1", None), ("nan", None), ("soon", None), ("0.001", None)],
)
def test_requested_interval(value: str, expected: float | None) -> None:
    if value == "0.001":
        expected = MIN_INTERVAL_S  # clamped: a request cannot make a responder flood
    assert requested_interval({LIVENESS_HEADER: value}) == expected


def test_a_liveness_window_must_be_positive() -> None:
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="positive"):
            Liveness(bad)
    assert Liveness(2.0).interval_s == 0.5
