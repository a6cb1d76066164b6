"""The node-call engine alone: retries, fallback and deadlines, driven without NATS.

`NodeCaller` makes its attempts through an `AttemptMaker`; here a scripted one
answers, so each rule of the retry loop is checked on its own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio

from nons.coordinator._attempt import LayerContext, Payload
from nons.coordinator._node_calls import NodeCaller
from nons.coordinator._state import ExecutionState
from nons.core.layer import Layer
from nons.core.node import Node
from nons.core.results import ErrorInfo, NodeResult
from nons.core.types import ErrorPolicy, LayerConfig

if TYPE_CHECKING:
    from nons.core.events import Event
    from nons.core.layer import NetworkNode
    from nons.core.types import ModelConfig

UNAVAILABLE = ErrorInfo(type="provider_unavailable", message="503", retryable=True)
INVALID = ErrorInfo(type="validation_error", message="bad output", retryable=False)
LOST = ErrorInfo(type="node_lost", message="nobody worked on it", retryable=True)


class Script:
    """An attempt maker that answers with the next scripted result."""

    def __init__(self, *answers: ErrorInfo | str) -> None:
        self.answers = list(answers)
        self.attempts: list[int] = []

    async def guarded(
        self,
        context: LayerContext,
        node: Node | NetworkNode,
        attempt: int,
        model: ModelConfig | None,
        payload: Payload,
    ) -> NodeResult:
        self.attempts.append(attempt)
        answer = self.answers.pop(0)
        if isinstance(answer, str):
            return NodeResult(node_id=node.node_id, operator=node.operator_name, output=answer)
        return NodeResult(
            node_id=node.node_id, operator=node.operator_name, status="failed", error=answer
        )


class Events:
    """Records what the caller would publish."""

    def __init__(self) -> None:
        self.types: list[str] = []
        self.retries: list[dict[str, Any]] = []

    async def emit(self, event_class: type[Event], **fields: Any) -> None:
        self.types.append(event_class.__struct_config__.tag)  # type: ignore[arg-type]
        if self.types[-1] == "node.retrying":
            self.retries.append(fields)


def context(config: LayerConfig, node: Node, seconds_left: float) -> LayerContext:
    payload = Payload.of("x")
    return LayerContext(
        index=0,
        layer=Layer([node], config),
        deadline=time.time() + seconds_left,
        limit="layer",
        limit_s=seconds_left,
        scope=anyio.CancelScope(),
        payload=payload,
        routed=payload,
        routes={},
        budget_models={},
    )


async def call(
    config: LayerConfig,
    script: Script,
    seconds_left: float = 10.0,
    *,
    resends: int = 0,
    events: Events | None = None,
) -> NodeResult:
    node = Node("transform", node_id="n")
    state = ExecutionState(
        execution_id="e", network="net", fingerprint="f", input="x", started_at=0, deadline=0
    )
    events = events or Events()
    results: list[NodeResult | None] = [None]
    caller = NodeCaller(state, events, script, lost_call_resends=resends)  # type: ignore[arg-type]
    await caller.call(context(config, node, seconds_left), 0, node, results)
    assert results[0] is not None
    return results[0]


RETRY = LayerConfig(
    error_policy=ErrorPolicy.RETRY_WITH_BACKOFF, max_retries=2, retry_delay_seconds=0.001
)


async def test_a_retryable_failure_is_retried_until_it_succeeds() -> None:
    script = Script(UNAVAILABLE, UNAVAILABLE, "ok")
    result = await call(RETRY, script)
    assert (result.status, result.output, result.attempts) == ("ok", "ok", 3)
    assert script.attempts == [1, 2, 3]


async def test_retries_stop_at_max_retries() -> None:
    script = Script(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    result = await call(RETRY, script)
    assert (result.status, result.attempts) == ("failed", 3)


async def test_a_non_retryable_failure_is_not_retried() -> None:
    script = Script(INVALID, "never")
    result = await call(RETRY, script)
    assert result.error == INVALID
    assert script.attempts == [1]


async def test_no_retry_whose_backoff_would_pass_the_deadline() -> None:
    slow_backoff = LayerConfig(
        error_policy=ErrorPolicy.RETRY_WITH_BACKOFF, max_retries=3, retry_delay_seconds=5.0
    )
    script = Script(UNAVAILABLE, "never")
    result = await call(slow_backoff, script, seconds_left=1.0)
    assert script.attempts == [1]
    assert result.error == UNAVAILABLE


async def test_a_lost_call_is_resent_whatever_the_policy() -> None:
    events = Events()
    script = Script(LOST, LOST, "ok")
    fail_fast = LayerConfig(error_policy=ErrorPolicy.FAIL_FAST)
    result = await call(fail_fast, script, resends=2, events=events)
    assert (result.status, result.output, result.attempts) == ("ok", "ok", 3)
    assert [r["reason"] for r in events.retries] == ["node_lost", "node_lost"]
    assert [r["delay_s"] for r in events.retries] == [0.0, 0.0]
    assert [r["error"].type for r in events.retries] == ["node_lost", "node_lost"]


async def test_lost_resends_are_bounded() -> None:
    script = Script(LOST, LOST, LOST, "never")
    result = await call(LayerConfig(error_policy=ErrorPolicy.FAIL_FAST), script, resends=2)
    assert (result.status, result.attempts) == ("failed", 3)
    assert result.error is not None
    assert result.error.type == "node_lost"


async def test_lost_resends_do_not_use_up_the_policys_retries() -> None:
    events = Events()
    script = Script(LOST, UNAVAILABLE, UNAVAILABLE, "ok")
    result = await call(RETRY, script, resends=1, events=events)
    assert (result.status, result.attempts) == ("ok", 4)
    assert [r["reason"] for r in events.retries] == ["node_lost", "error", "error"]


async def test_no_resend_after_the_layer_deadline() -> None:
    script = Script(LOST, "never")
    result = await call(LayerConfig(), script, seconds_left=-1.0, resends=2)
    assert result.status == "failed"
    assert script.attempts == [1]
