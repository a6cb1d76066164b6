"""What an execution produced: node, layer and execution results with usage and cost.

These are plain Structs so that the coordinator can send them in its reply and a
client in another process rebuilds exactly the object `forward()` returns.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from nons.core.errors import ExecutionError, error_class_for
from nons.core.types import CostInfo, TokenUsage

__all__ = (
    "ErrorInfo",
    "ExecutionMetadata",
    "ExecutionResult",
    "ExecutionStatus",
    "IndexedResult",
    "LayerResult",
    "NodeResult",
    "NodeStatus",
)

ExecutionStatus = Literal["completed", "failed", "partial"]
"""How an execution (or a layer) ended."""

NodeStatus = Literal["ok", "failed", "skipped", "fallback"]
"""How one node call ended: `fallback` means its declared fallback output was used."""


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The wire form of an error: a stable `type`, a message and JSON-safe details."""

    type: str
    """Stable identifier, e.g. `node_timeout`, `budget_exceeded`, `validation_error`."""
    message: str
    """Human-readable explanation; never contains secrets."""
    retryable: bool = False
    """Whether a retry may succeed."""
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    """Facts such as the node id, layer index, field and rule."""

    @classmethod
    def from_exception(cls, exc: ExecutionError) -> ErrorInfo:
        """The wire form of one of our errors."""
        return cls(type=exc.type, message=exc.message, retryable=exc.retryable, details=exc.details)

    def to_exception(self) -> ExecutionError:
        """Rebuild the typed exception (the base class when the type is unknown here)."""
        error_class = error_class_for(self.type)
        exc = error_class.__new__(error_class)
        ExecutionError.__init__(exc, self.message, details=self.details)
        for name in ("operator", "direction", "field", "rule"):
            if name in self.details:
                setattr(exc, name, self.details[name])
        return exc


class NodeResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One node call's outcome: self-contained, so it can be checkpointed as it is."""

    node_id: str
    """The node's id within its network."""
    operator: str
    """The operator the node runs."""
    status: NodeStatus = "ok"
    """How the call ended."""
    output: Any = None
    """The operator's output (`None` when failed or skipped)."""
    usage: TokenUsage = TokenUsage()
    """Tokens of every model call the node made."""
    cost: CostInfo = CostInfo()
    """Cost of those calls."""
    provider: str | None = None
    """Provider of the last model call, if any."""
    model: str | None = None
    """Model that answered the last model call, if any."""
    is_mock: bool = False
    """True when the output came from the offline mock provider."""
    duration_ms: float = 0.0
    """Wall time of the call as seen by whoever ran it."""
    attempts: int = 1
    """How many times the call was made (retries included)."""
    error: ErrorInfo | None = None
    """Why the call failed, when it did."""
    cached: bool = False
    """True when the output was served from the node-result cache, not computed."""
    saved_cost_usd: float = 0.0
    """What the cached call cost when it was computed: spent once, saved now."""
    branch: str | None = None
    """For a router: the branch that ran (its output, usage and cost are this result's)."""

    @property
    def succeeded(self) -> bool:
        """Whether the node produced an output the next layer may use."""
        return self.status in ("ok", "fallback")


class LayerResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A parallel layer's outcome, one `NodeResult` per node in layer order."""

    layer_index: int
    """Position of the layer in its network."""
    status: ExecutionStatus
    """`partial` when the policy let some nodes fail."""
    nodes: list[NodeResult] = msgspec.field(default_factory=list)
    """Results in node order."""
    duration_ms: float = 0.0
    """Wall time of the layer."""

    @property
    def outputs(self) -> list[Any]:
        """Outputs of the nodes that succeeded, in node order."""
        return [node.output for node in self.nodes if node.succeeded]

    @property
    def output(self) -> Any:
        """What the next layer receives: the one output, or the list of outputs."""
        outputs = self.outputs
        return outputs[0] if len(self.nodes) == 1 and outputs else outputs

    @property
    def successful_nodes(self) -> int:
        """Number of nodes that succeeded."""
        return sum(1 for node in self.nodes if node.succeeded)

    @property
    def failed_nodes(self) -> int:
        """Number of nodes that failed or were skipped."""
        return len(self.nodes) - self.successful_nodes

    @property
    def success_rate(self) -> float:
        """Share of nodes that succeeded (0 to 1)."""
        return self.successful_nodes / len(self.nodes) if self.nodes else 0.0

    @property
    def usage(self) -> TokenUsage:
        """Tokens of all nodes of the layer."""
        return sum((node.usage for node in self.nodes), TokenUsage())

    @property
    def cost(self) -> CostInfo:
        """Cost of all nodes of the layer."""
        return sum((node.cost for node in self.nodes), CostInfo())

    @property
    def saved_cost_usd(self) -> float:
        """Cost the node-result cache saved in this layer."""
        return sum(node.saved_cost_usd for node in self.nodes)


class ExecutionMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """Facts about one execution: ids, usage, cost and timing."""

    execution_id: str
    """Id of the execution (also in event subjects)."""
    network: str
    """Name of the network that ran."""
    trace_id: str | None = None
    """W3C trace id of the execution's trace, as 32 hex digits."""
    token_usage: TokenUsage = TokenUsage()
    """Tokens of every node call."""
    cost: CostInfo = CostInfo()
    """Cost of every node call."""
    duration_ms: float = 0.0
    """Wall time measured by the coordinator."""
    is_mock: bool = False
    """True when any output came from the offline mock provider."""

    @property
    def total_tokens(self) -> int:
        """All tokens of the execution."""
        return self.token_usage.total_tokens

    @property
    def cost_usd(self) -> float:
        """Total cost in US dollars."""
        return self.cost.total_cost_usd


class ExecutionResult(msgspec.Struct, frozen=True, kw_only=True):
    """What `NoN.forward()` and `Client.execute()` return.

    Passing a result as the input of another `forward` runs on its `output`.
    """

    output: Any
    """The last layer's output."""
    status: ExecutionStatus
    """`completed`, `partial` or `failed`."""
    metadata: ExecutionMetadata
    """Ids, usage, cost and timing."""
    layer_results: list[LayerResult] = msgspec.field(default_factory=list)
    """One result per layer that ran."""
    error: ErrorInfo | None = None
    """Why the execution failed or is partial."""

    @property
    def final_output(self) -> Any:
        """The output, under the name the NoN documentation uses."""
        return self.output

    @property
    def execution_id(self) -> str:
        """Shortcut to `metadata.execution_id`."""
        return self.metadata.execution_id

    @property
    def is_mock(self) -> bool:
        """True when any output came from the offline mock provider (not a real answer)."""
        return self.metadata.is_mock

    @property
    def saved_cost_usd(self) -> float:
        """Cost the node-result cache saved: what the cached calls cost when computed."""
        return sum(layer.saved_cost_usd for layer in self.layer_results)

    def raise_for_status(self) -> ExecutionResult:
        """Return self, or raise the typed error of a failed execution.

        Raises:
            ExecutionError: the subclass named by `error.type`, with `.result` set.
        """
        if self.status != "failed":
            return self
        info = self.error or ErrorInfo(type="execution_error", message="execution failed")
        exc = info.to_exception()
        exc.result = self  # type: ignore[attr-defined]
        raise exc


class IndexedResult(ExecutionResult, frozen=True, kw_only=True):
    """An `ExecutionResult` that also says which input it belongs to.

    It *is* an `ExecutionResult` (so `.output`, `.status`, `.raise_for_status()` and
    passing it to `forward()` all work), which lets `async for result in net.stream(...)`
    read like a loop over plain results while out-of-order completions stay traceable.
    """

    index: int
    """Position of the input in the iterable the batch or stream was given (from 0)."""
