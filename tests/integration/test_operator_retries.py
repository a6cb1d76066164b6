"""A custom operator's transient failure is retried; its other failures are `operator_error`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

import nons
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.errors import RetryableError
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ErrorPolicy, LayerConfig
from tests.support import flaky_ops

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats

RETRY = LayerConfig(
    error_policy=ErrorPolicy.RETRY_WITH_BACKOFF, max_retries=2, retry_delay_seconds=0.01
)


def test_retryable_error_is_public() -> None:
    assert nons.RetryableError is RetryableError


@pytest.mark.parametrize("kind", ["timeout", "connection", "retryable"])
async def test_a_transient_failure_is_retried_and_then_succeeds(nc: Nats, kind: str) -> None:
    key = uuid.uuid4().hex
    flaky_ops.TRANSIENT_FAILURES[key] = 1
    net = NoN.from_operators(
        [Node(flaky_ops.transient_once, key=key, kind=kind)],
        name=f"transient-{kind}-{key[:6]}",
        layer_config=RETRY,
    )
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        result = await Client(nc).execute(net.name, {"text": "x"})
    assert result.status == "completed", result.error
    assert result.output == "ok:x"
    assert result.layer_results[0].nodes[0].attempts == 2


async def test_a_plain_exception_is_an_operator_error_and_not_retried(nc: Nats) -> None:
    key = uuid.uuid4().hex
    flaky_ops.TRANSIENT_FAILURES[key] = 1
    net = NoN.from_operators(
        [Node(flaky_ops.transient_once, key=key, kind="value")],
        name=f"not-transient-{key[:6]}",
        layer_config=RETRY,
    )
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        result = await Client(nc).execute(net.name, {"text": "x"})
    assert result.error is not None
    assert result.error.type == "operator_error"
    assert result.error.retryable is False
    assert result.error.details["exception"] == "ValueError"
    assert result.layer_results[0].nodes[0].attempts == 1
    assert flaky_ops.TRANSIENT_FAILURES[key] == 0  # it ran once, and only once
