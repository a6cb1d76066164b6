"""Execution events: a tagged union of msgspec Structs published on `nons.events.>`.

Every step of an execution is an event with `type`, `ts`, `network`, `execution_id`,
`trace_id` and `span_id`, so that any NATS client can follow executions live and a
sink can record them without knowing Python.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from nons.core.results import ErrorInfo
from nons.core.types import TokenUsage

__all__ = (
    "BudgetExceeded",
    "CircuitChanged",
    "CostAlert",
    "Event",
    "EventType",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ExecutionResumed",
    "ExecutionStarted",
    "LayerCompleted",
    "LayerStarted",
    "ModelSelected",
    "NodeCompleted",
    "NodeBatch",
    "NodeDelta",
    "NodeFailed",
    "NodeRerouted",
    "NodeRetrying",
    "NodeStarted",
    "RetryReason",
    "RouteSelected",
    "decode_event",
    "encode_event",
)


RetryReason = Literal["error", "fallback", "node_lost"]
"""Why a node call is made again (`node.retrying`'s `reason`)."""


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Fields every event has; `type` is the tag (e.g. `node.completed`)."""

    ts: float
    """Unix time in seconds when the event happened."""
    network: str
    """Network name."""
    execution_id: str
    """Execution id."""
    trace_id: str | None = None
    """W3C trace id (32 hex digits) of the execution."""
    span_id: str | None = None
    """Span the event belongs to (16 hex digits)."""

    @property
    def type(self) -> str:
        """The event type, e.g. `execution.started`."""
        tag = self.__struct_config__.tag
        return str(tag)


class ExecutionStarted(Event, tag="execution.started", frozen=True, kw_only=True):
    """A coordinator accepted an execution."""

    layers: int = 0
    """Number of layers the network has."""
    metadata: dict[str, str] | None = None
    """The caller's labels."""


class LayerStarted(Event, tag="layer.started", frozen=True, kw_only=True):
    """A layer's nodes are being called."""

    layer_index: int
    """Position of the layer."""
    node_ids: list[str] = msgspec.field(default_factory=list)
    """Nodes of the layer."""


class NodeStarted(Event, tag="node.started", frozen=True, kw_only=True):
    """A node call was sent."""

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    attempt: int = 1
    """1 for the first try."""


class NodeCompleted(Event, tag="node.completed", frozen=True, kw_only=True):
    """A node call succeeded (or its fallback output was used)."""

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    attempt: int = 1
    """Attempt that succeeded."""
    duration_ms: float = 0.0
    """Round trip seen by the coordinator."""
    usage: TokenUsage = TokenUsage()
    """Tokens of the call."""
    cost_usd: float = 0.0
    """Cost of the call."""
    is_mock: bool = False
    """True for mock output."""
    status: str = "ok"
    """`ok` or `fallback`."""
    cached: bool = False
    """True when the actor served the output from the node-result cache."""


class NodeDelta(Event, tag="node.delta", frozen=True, kw_only=True):
    """A piece of a streaming node's model output, published by the actor as it arrives.

    Joining the `text` of one attempt's deltas in `index` order gives the text the
    model produced (for an operator that makes one model call).
    """

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    attempt: int = 1
    """The attempt producing the text."""
    index: int = 0
    """Sequence number of the delta within its attempt, from 0."""
    text: str = ""
    """The new text."""


class NodeBatch(Event, tag="node.batch", frozen=True, kw_only=True):
    """Where the Message Batch a batch-mode node call waits in stands, published by the actor.

    Sent when the batch is created and each time a poll finds its counts changed; the
    counts are the API's `request_counts` for the whole batch (every call in it).
    """

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    attempt: int = 1
    """The attempt waiting in the batch."""
    batch_id: str
    """The Message Batch's id."""
    processing_status: str = "in_progress"
    """`in_progress`, `canceling` or `ended`."""
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0


class NodeFailed(Event, tag="node.failed", frozen=True, kw_only=True):
    """A node call failed for good (no retry left)."""

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    attempt: int = 1
    """Last attempt."""
    error: ErrorInfo
    """Why."""


class NodeRetrying(Event, tag="node.retrying", frozen=True, kw_only=True):
    """A node call failed with a retryable error and will be tried again."""

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    attempt: int
    """The attempt about to be made."""
    delay_s: float = 0.0
    """Backoff before it."""
    error: ErrorInfo
    """The failure that caused the retry."""
    model: str | None = None
    """The model of the next attempt when it changes (`FALLBACK_MODEL`)."""
    reason: RetryReason = "error"
    """`error`: the ErrorPolicy retries a retryable failure; `fallback`: the next attempt
    uses the fallback model; `node_lost`: nobody worked on the call (its actor died or
    none took it), so it is re-sent whatever the policy."""


class LayerCompleted(Event, tag="layer.completed", frozen=True, kw_only=True):
    """A layer ended."""

    layer_index: int
    """Position of the layer."""
    status: str
    """`completed`, `partial` or `failed`."""
    duration_ms: float = 0.0
    """Wall time of the layer."""
    successful_nodes: int = 0
    """Nodes that succeeded."""
    failed_nodes: int = 0
    """Nodes that failed or were skipped."""


class ExecutionCompleted(Event, tag="execution.completed", frozen=True, kw_only=True):
    """An execution ended with `completed` or `partial`."""

    status: str = "completed"
    """`completed` or `partial`."""
    duration_ms: float = 0.0
    """Wall time at the coordinator."""
    usage: TokenUsage = TokenUsage()
    """Tokens of all calls."""
    cost_usd: float = 0.0
    """Cost of all calls."""
    is_mock: bool = False
    """True when any output came from the mock provider."""
    error: ErrorInfo | None = None
    """Why a `partial` execution stopped early (e.g. `budget_exceeded`), if it did."""


class ExecutionResumed(Event, tag="execution.resumed", frozen=True, kw_only=True):
    """A coordinator took over a durable execution whose coordinator died."""

    layer_index: int
    """The first unfinished layer, where it resumes."""
    resumes: int = 1
    """How many times the execution has been taken over so far."""
    previous_owner: str | None = None
    """The coordinator instance whose lease expired."""


class ExecutionFailed(Event, tag="execution.failed", frozen=True, kw_only=True):
    """An execution ended with `failed`."""

    error: ErrorInfo
    """Why."""
    duration_ms: float = 0.0
    """Wall time at the coordinator."""
    layer_index: int | None = None
    """Layer where it failed, if any."""
    usage: TokenUsage = TokenUsage()
    """Tokens spent before failing."""
    cost_usd: float = 0.0
    """Cost spent before failing."""


class BudgetExceeded(Event, tag="budget.exceeded", frozen=True, kw_only=True):
    """The next layer's worst case would take the execution past its budget."""

    layer_index: int
    """The layer that was not started."""
    spent_usd: float
    """Spent so far."""
    budget_usd: float
    """The execution's budget."""
    worst_case_usd: float
    """Worst-case cost of the layer that was not started."""


class CostAlert(Event, tag="cost.alert", frozen=True, kw_only=True):
    """An execution's spending passed the network's `cost_alert_usd`."""

    spent_usd: float
    """Spent so far."""
    threshold_usd: float
    """The configured threshold."""


class NodeRerouted(Event, tag="node.rerouted", frozen=True, kw_only=True):
    """A node runs on its cheaper `budget_model` because the budget is low."""

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    model: str | None = None
    """The cheaper model's id."""
    provider: str | None = None
    """The cheaper model's provider."""


class RouteSelected(Event, tag="route.selected", frozen=True, kw_only=True):
    """A router chose the branch that runs on the routed content."""

    layer_index: int
    """Layer of the router."""
    node_id: str
    """The router."""
    branch: str
    """The branch that runs; its node is `<node_id>-<branch>`."""
    default_used: bool = False
    """True when the decision named no branch and the default runs."""
    requested: str | None = None
    """The path the decision named, if any."""


class ModelSelected(Event, tag="model.selected", frozen=True, kw_only=True):
    """A node's `model_selector` chose the model of its next call."""

    layer_index: int
    """Layer of the node."""
    node_id: str
    """The node."""
    model: str | None = None
    """The chosen model's id (`None`: the provider's default)."""
    provider: str | None = None
    """The chosen model's provider (`None`: the process default)."""
    selector: str = ""
    """The selector's `module:function` path."""


class CircuitChanged(Event, tag="circuit.changed", frozen=True, kw_only=True):
    """A circuit breaker changed state: a node's (coordinator) or a provider model's (actor)."""

    node_id: str
    """The node."""
    old_state: str
    """`closed`, `open` or `half_open`."""
    new_state: str
    """`closed`, `open` or `half_open`."""
    provider: str | None = None
    """For a provider-model breaker in an actor: the provider."""
    model: str | None = None
    """For a provider-model breaker in an actor: the model."""


AnyEvent = (
    ExecutionStarted
    | LayerStarted
    | NodeStarted
    | NodeCompleted
    | NodeDelta
    | NodeBatch
    | NodeFailed
    | NodeRetrying
    | LayerCompleted
    | ExecutionCompleted
    | ExecutionFailed
    | ExecutionResumed
    | BudgetExceeded
    | CostAlert
    | NodeRerouted
    | CircuitChanged
    | RouteSelected
    | ModelSelected
)

EventType = str
"""An event's `type`, e.g. `node.completed`."""

_ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(AnyEvent)


def encode_event(event: Event) -> bytes:
    """JSON bytes of an event, `type` included."""
    return _ENCODER.encode(event)


def decode_event(payload: bytes) -> Event:
    """Decode an event.

    Raises:
        msgspec.ValidationError: unknown type or malformed fields.
        msgspec.DecodeError: not JSON.
    """
    event: Event = _DECODER.decode(payload)
    return event
