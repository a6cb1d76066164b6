"""A request with a mistake gets a typed refusal over NATS, and the coordinator serves on."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from nons.actors.host import ActorHost
from nons.coordinator.service import Coordinator
from nons.core.names import exec_subject
from nons.core.network import NoN
from nons.core.node import Node
from tests.support.flaky_ops import fail_if

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats

_OPERATORS = fail_if


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b'{"timeout_s": 30}', "no 'input'"),
        (b'{"inputs": "x", "timeout_s": 5}', "unknown keys: inputs"),
        (b'{"input": "\\ud800"}', "invalid code point"),
    ],
)
async def test_a_mistaken_request_is_refused_and_the_next_one_runs(
    nc: Nats, payload: bytes, words: str
) -> None:
    net = NoN.from_operators([Node(fail_if)], name=f"envelope-{uuid.uuid4().hex[:6]}")
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        refused = json.loads((await nc.request(exec_subject(net.name), payload, timeout=10)).data)
        ok = json.loads(
            (await nc.request(exec_subject(net.name), b'{"input": {"text": "x"}}', timeout=10)).data
        )
    assert refused["status"] == "failed"
    assert refused["error"]["type"] == "invalid_request"
    assert words in refused["error"]["message"]
    assert ok["status"] == "completed"
    assert ok["output"] == "ok:x"
