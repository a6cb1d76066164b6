"""What the page shows, folded from events: executions, their layers and nodes, and totals.

Pure and synchronous (no NATS, no HTTP), so the same fold serves the live feed, the
replay of `NONS_EVENTS` and a one-off lookup, and a unit test can drive it with plain
events. Every value it hands out is JSON-ready (`dict`, `list`, `str`, numbers): the
web layer only serialises it, and the browser renders it as text.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nons.core.events import (
    CircuitChanged,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionResumed,
    ExecutionStarted,
    LayerCompleted,
    LayerStarted,
    ModelSelected,
    NodeCompleted,
    NodeDelta,
    NodeFailed,
    NodeRerouted,
    NodeRetrying,
    NodeStarted,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nons.core.events import Event
    from nons.core.results import ErrorInfo, NodeResult
    from nons.runtime.messages import ExecReply

__all__ = ("MAX_DELTA_CHARS", "Board", "ExecutionView", "NodeView")

MAX_DELTA_CHARS = 64 * 1024
"""Streamed text kept per node: enough to read, bounded so a chatty model cannot grow us."""

_TERMINAL = frozenset({"completed", "partial", "failed"})


@dataclass
class NodeView:
    """One node of one execution, as its events tell it."""

    node_id: str
    layer_index: int
    status: str = "pending"
    """pending, running, retrying, completed, failed, cached or fallback."""
    attempt: int = 1
    started_at: float | None = None
    ended_at: float | None = None
    duration_ms: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    is_mock: bool = False
    text: str = ""
    """The current attempt's streamed text (`node.delta`), in order."""
    error: dict[str, Any] | None = None
    retry_reason: str | None = None
    model: str | None = None
    output: Any = None
    output_known: bool = False

    def as_json(self) -> dict[str, Any]:
        """The node for the page."""
        return dict(self.__dict__)


@dataclass
class ExecutionView:
    """One execution: its summary for the list and its layers and nodes for the graph."""

    execution_id: str
    network: str
    status: str = "running"
    started_at: float | None = None
    ended_at: float | None = None
    duration_ms: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    is_mock: bool = False
    trace_id: str | None = None
    layer_count: int = 0
    error: dict[str, Any] | None = None
    output: Any = None
    output_known: bool = False
    layers: dict[int, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, NodeView] = field(default_factory=dict)
    counted_saved_usd: float | None = None
    """The savings already added to the network's totals (`None`: not counted yet)."""
    applied: set[tuple[Any, ...]] = field(default_factory=set)
    """Keys of the events folded in: the live feed and a lookup in the event stream can
    both deliver one event, and a second `node.started` must not undo a completion."""

    @property
    def finished(self) -> bool:
        """Whether a terminal event (or the reply) arrived."""
        return self.status in _TERMINAL

    @property
    def saved_usd(self) -> float:
        """What the node-result cache saved, as far as the replies tell."""
        return sum(node.saved_usd for node in self.nodes.values())

    def summary(self) -> dict[str, Any]:
        """The row of the executions list."""
        return {
            "execution_id": self.execution_id,
            "network": self.network,
            "status": self.status,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "saved_usd": self.saved_usd,
            "cached_nodes": sum(1 for node in self.nodes.values() if node.status == "cached"),
            "is_mock": self.is_mock,
            "trace_id": self.trace_id,
            "error_type": self.error["type"] if self.error else None,
        }

    def detail(self) -> dict[str, Any]:
        """Everything the execution view draws."""
        return {
            **self.summary(),
            "ended_at": self.ended_at,
            "layer_count": self.layer_count,
            "error": self.error,
            "output": self.output,
            "output_known": self.output_known,
            "layers": [self.layers[index] for index in sorted(self.layers)],
            "nodes": [node.as_json() for node in self._ordered_nodes()],
        }

    def node(self, node_id: str, layer_index: int) -> NodeView:
        """The node, created pending on first mention."""
        found = self.nodes.get(node_id)
        if found is None:
            found = self.nodes[node_id] = NodeView(node_id=node_id, layer_index=layer_index)
            self.layer(layer_index).setdefault("node_ids", []).append(node_id)
        return found

    def layer(self, index: int) -> dict[str, Any]:
        """The layer's record, created on first mention."""
        found = self.layers.get(index)
        if found is None:
            found = self.layers[index] = {
                "layer_index": index,
                "status": "pending",
                "node_ids": [],
                "started_at": None,
                "ended_at": None,
                "duration_ms": 0.0,
            }
        return found

    def _ordered_nodes(self) -> list[NodeView]:
        return sorted(self.nodes.values(), key=lambda node: node.layer_index)


class Board:
    """Every execution seen (the newest `capacity`), per-network totals and breaker states.

    `apply` returns the id of the execution an event changed (or `None`), so the feed
    knows what to push to the pages watching.
    """

    def __init__(self, capacity: int = 500) -> None:
        """Keep at most `capacity` executions; the oldest finished ones go first."""
        self.capacity = capacity
        self.executions: OrderedDict[str, ExecutionView] = OrderedDict()
        self.breakers: dict[tuple[str, str], str] = {}
        """(network, node_id) -> `closed`, `open` or `half_open`, from `circuit.changed`."""
        self.models: dict[tuple[str, str], str] = {}
        """(network, node_id) -> the model last seen answering or chosen for the node."""
        self.layouts: dict[str, list[list[str]]] = {}
        """network -> node ids per layer, as the last `layer.started` events listed them."""
        self._totals: dict[str, dict[str, float]] = {}

    def apply(self, event: Event) -> str | None:
        """Fold one event in; the execution it changed, if any."""
        if isinstance(event, CircuitChanged):
            if event.provider is None:
                self.breakers[(event.network, event.node_id)] = event.new_state
            return None
        view = self._execution(event)
        key = _event_key(event)
        if key in view.applied:
            return None
        view.applied.add(key)
        if view.trace_id is None:
            view.trace_id = event.trace_id
        _apply_to(view, event)
        if isinstance(event, LayerStarted):
            self._remember_layout(event)
        if isinstance(event, (ModelSelected, NodeRerouted)) and event.model:
            self.models[(event.network, event.node_id)] = event.model
        if isinstance(event, (ExecutionCompleted, ExecutionFailed)):
            self._count(view)
        return view.execution_id

    def apply_all(self, events: Iterable[Event]) -> None:
        """Fold events in order."""
        for event in events:
            self.apply(event)

    def attach_reply(self, reply: ExecReply) -> str:
        """Add what only the reply carries: the output, node outputs and cache savings."""
        view = self.execution(reply.execution_id, reply.network)
        view.output, view.output_known = reply.output, reply.status != "failed"
        for layer in reply.layers:
            for result in layer.nodes:
                node = view.node(result.node_id, layer.layer_index)
                node.output, node.output_known = result.output, result.error is None
                node.saved_usd = result.saved_cost_usd
                if node.status not in _NODE_FINAL:  # its final event is late or was missed
                    node.status = _reply_node_status(result)
                if result.model:
                    node.model = result.model
                    self.models[(view.network, result.node_id)] = result.model
        if not view.finished:
            view.status = reply.status
            view.duration_ms, view.cost_usd = reply.duration_ms, reply.cost_usd
            view.tokens, view.is_mock = reply.usage.total_tokens, reply.is_mock
            view.error = _error(reply.error) if reply.error is not None else None
            view.trace_id = view.trace_id or reply.trace_id
        self._count(view)  # counts a new finish, or adds savings the events did not carry
        return view.execution_id

    def totals(self) -> dict[str, dict[str, float]]:
        """Per network: finished executions, tokens, cost and cache savings."""
        return {name: dict(values) for name, values in sorted(self._totals.items())}

    def summaries(self) -> list[dict[str, Any]]:
        """Rows of the executions list, newest first."""
        return [view.summary() for view in reversed(self.executions.values())]

    def execution(self, execution_id: str, network: str) -> ExecutionView:
        """The execution, created (running, nothing known yet) on first mention."""
        view = self.executions.get(execution_id)
        if view is None:
            view = self._new(execution_id, network)
        return view

    def _execution(self, event: Event) -> ExecutionView:
        return self.execution(event.execution_id, event.network)

    def _new(self, execution_id: str, network: str) -> ExecutionView:
        view = self.executions[execution_id] = ExecutionView(
            execution_id=execution_id, network=network
        )
        while len(self.executions) > self.capacity:
            oldest = next(
                (key for key, old in self.executions.items() if old.finished),
                next(iter(self.executions)),
            )
            del self.executions[oldest]
        return view

    def _count(self, view: ExecutionView) -> None:
        totals = self._totals.setdefault(
            view.network, {"executions": 0, "tokens": 0, "cost_usd": 0.0, "saved_usd": 0.0}
        )
        counted = view.counted_saved_usd
        if counted is not None:  # a reply after the terminal event: only add the savings
            totals["saved_usd"] += view.saved_usd - counted
        else:
            totals["executions"] += 1
            totals["tokens"] += view.tokens
            totals["cost_usd"] += view.cost_usd
            totals["saved_usd"] += view.saved_usd
        view.counted_saved_usd = view.saved_usd

    def _remember_layout(self, event: LayerStarted) -> None:
        layout = self.layouts.setdefault(event.network, [])
        while len(layout) <= event.layer_index:
            layout.append([])
        layout[event.layer_index] = list(event.node_ids)


def _apply_to(view: ExecutionView, event: Event) -> None:  # noqa: C901 - one branch per type
    """The per-type step of the fold."""
    if isinstance(event, ExecutionStarted):
        view.status, view.started_at, view.layer_count = "running", event.ts, event.layers
        for index in range(event.layers):
            view.layer(index)
    elif isinstance(event, ExecutionResumed):
        view.status = "running"
    elif isinstance(event, (ExecutionCompleted, ExecutionFailed)):
        _finish(view, event)
    elif isinstance(event, LayerStarted):
        layer = view.layer(event.layer_index)
        layer["status"], layer["started_at"] = "running", event.ts
        for node_id in event.node_ids:
            view.node(node_id, event.layer_index)
    elif isinstance(event, LayerCompleted):
        layer = view.layer(event.layer_index)
        layer["status"], layer["ended_at"] = event.status, event.ts
        layer["duration_ms"] = event.duration_ms
        if layer["started_at"] is None:
            layer["started_at"] = event.ts - event.duration_ms / 1000
    elif isinstance(event, NodeStarted):
        node = view.node(event.node_id, event.layer_index)
        if node.started_at is None:
            node.started_at = event.ts
        if event.attempt != node.attempt:
            node.text = ""
        node.status, node.attempt = "running", event.attempt
    elif isinstance(event, NodeDelta):
        node = view.node(event.node_id, event.layer_index)
        if event.attempt == node.attempt and len(node.text) < MAX_DELTA_CHARS:
            node.text = (node.text + event.text)[:MAX_DELTA_CHARS]
    elif isinstance(event, NodeRetrying):
        node = view.node(event.node_id, event.layer_index)
        node.status, node.retry_reason = "retrying", event.reason
        node.error = _error(event.error)
    elif isinstance(event, NodeCompleted):
        _complete_node(view.node(event.node_id, event.layer_index), event)
    elif isinstance(event, NodeFailed):
        node = view.node(event.node_id, event.layer_index)
        node.status, node.ended_at, node.attempt = "failed", event.ts, event.attempt
        node.error = _error(event.error)
        if node.started_at is not None:
            node.duration_ms = (event.ts - node.started_at) * 1000
    elif isinstance(event, (ModelSelected, NodeRerouted)):
        view.node(event.node_id, event.layer_index).model = event.model


def _event_key(event: Event) -> tuple[Any, ...]:
    """What tells one event of an execution from another (a delta by its index)."""
    return (
        event.type,
        event.ts,
        getattr(event, "layer_index", None),
        getattr(event, "node_id", None),
        getattr(event, "attempt", None),
        getattr(event, "index", None),
    )


_NODE_FINAL = frozenset({"completed", "cached", "fallback", "failed"})
"""Node states only a final event (or the reply) sets."""


def _reply_node_status(result: NodeResult) -> str:
    """A node's final state as its result in the reply says it."""
    if result.cached:
        return "cached"
    if result.status == "fallback":
        return "fallback"
    return "completed" if result.error is None else "failed"


def _complete_node(node: NodeView, event: NodeCompleted) -> None:
    if event.cached:
        node.status = "cached"
    elif event.status == "fallback":
        node.status = "fallback"
    else:
        node.status = "completed"
    node.attempt, node.ended_at, node.duration_ms = event.attempt, event.ts, event.duration_ms
    node.tokens, node.cost_usd, node.is_mock = (
        event.usage.total_tokens,
        event.cost_usd,
        event.is_mock,
    )
    node.error = None
    if node.started_at is None:
        node.started_at = event.ts - event.duration_ms / 1000


def _finish(view: ExecutionView, event: ExecutionCompleted | ExecutionFailed) -> None:
    view.ended_at, view.duration_ms = event.ts, event.duration_ms
    view.tokens, view.cost_usd = event.usage.total_tokens, event.cost_usd
    if view.started_at is None:
        view.started_at = event.ts - event.duration_ms / 1000
    if isinstance(event, ExecutionCompleted):
        view.status, view.is_mock = event.status, event.is_mock
        view.error = _error(event.error) if event.error is not None else None
    else:
        view.status, view.error = "failed", _error(event.error)
    view.is_mock = view.is_mock or any(node.is_mock for node in view.nodes.values())


def _error(error: ErrorInfo) -> dict[str, Any]:
    return {"type": error.type, "message": error.message, "retryable": error.retryable}
