"""A network (NoN): layers in sequence under a name, run through the NATS runtime.

The network itself only describes; `forward()` hands it to an executor (the
configured NATS client, or the embedded in-process runtime) so that a notebook and a
request from another machine go through the same coordinator and actor code.
"""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from typing import TYPE_CHECKING, Any, TypeAlias

from nons.core.errors import ConfigurationError
from nons.core.executor import NetworkExecutor, get_runtime
from nons.core.layer import NETWORK_OPERATOR, Layer, LayerMember, NetworkNode
from nons.core.modes import DEFAULT_BATCH_CONCURRENCY, ExecutionMode
from nons.core.names import validate_token
from nons.core.node import Node
from nons.core.results import ExecutionResult
from nons.core.router import ROUTER_OPERATOR, Router
from nons.core.spec import (
    NetworkSpec,
    NodeSpec,
    load_spec,
    save_spec,
    spec_fingerprint,
)
from nons.core.types import Content, LayerConfig, NetworkConfig

if TYPE_CHECKING:
    from pathlib import Path

    from nons.core.events import Event
    from nons.core.executor import BatchInput
    from nons.core.results import IndexedResult

__all__ = ("EventCallback", "NetworkExecutor", "NoN", "OperatorSpec")

OperatorSpec: TypeAlias = "str | Node | NoN | Router | Sequence[Any]"
"""One entry of `from_operators`: a name, a node, a network, a router, or a list (parallel)."""

EventCallback = Callable[["Event"], Awaitable[None] | None]
"""A callback given every event of a matching type (sync or async)."""


class NoN:
    """A Network of Networks: layers of parallel nodes, run in sequence.

    Example:
        >>> layers = ["transform", Node("generate") * 3, "synthesize"]
        >>> net = NoN.from_operators(layers, name="triage")
        >>> result = await net.forward("some text")
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        network_config: NetworkConfig | None = None,
        name: str | None = None,
        *,
        network_id: str | None = None,
    ) -> None:
        """Create a network; node ids are made unique and deterministic per layer.

        Args:
            layers: at least one layer.
            network_config: execution-wide settings.
            name: subject token of the network; derived from its content when omitted.
            network_id: the same as `name` (the NoN documentation's spelling).

        Raises:
            ConfigurationError: empty network, duplicate node ids or a bad name.
        """
        if not layers:
            raise ConfigurationError("a network needs at least one layer")
        self.network_config: NetworkConfig = network_config or NetworkConfig()
        self.layers: list[Layer] = [
            _place_layer(index, layer) for index, layer in enumerate(layers)
        ]
        self._subscribers: dict[str, list[EventCallback]] = {}
        chosen = name if name is not None else network_id
        if chosen is None:
            anonymous = NetworkSpec(
                name="non",
                layers=[layer.to_spec() for layer in self.layers],
                config=self.network_config,
            )
            chosen = f"non-{spec_fingerprint(anonymous)[:10]}"
        self.name: str = validate_token(chosen, "network name")
        self._spec = NetworkSpec(
            name=self.name,
            layers=[layer.to_spec() for layer in self.layers],
            config=self.network_config,
        )
        self._fingerprint = spec_fingerprint(self._spec)

    @classmethod
    def from_operators(
        cls,
        operator_specs: Sequence[OperatorSpec],
        network_config: NetworkConfig | None = None,
        *,
        name: str | None = None,
        layer_config: LayerConfig | None = None,
        **node_kwargs: Any,
    ) -> NoN:
        """Build a network with one layer per entry.

        An entry is an operator name, a `Node`, a `NoN` (sub-network), or a list of
        those (one parallel layer; `Node(...) * 3` is such a list).

        Raises:
            ConfigurationError: for an entry of another type or an unknown operator.
        """
        layers = [Layer(_members(entry, node_kwargs), layer_config) for entry in operator_specs]
        return cls(layers, network_config, name)

    @property
    def network_id(self) -> str:
        """The network's name (the NoN documentation's spelling)."""
        return self.name

    @property
    def fingerprint(self) -> str:
        """Hash of the spec: processes serving one name must hold the same one."""
        return self._fingerprint

    def to_spec(self) -> NetworkSpec:
        """The serialisable form of the whole network, sub-networks included."""
        return self._spec

    @classmethod
    def from_spec(cls, spec: NetworkSpec) -> NoN:
        """Rebuild a network from its spec (importing custom operator modules)."""
        layers = []
        for layer_spec in spec.layers:
            members: list[LayerMember] = []
            for node_spec in layer_spec.nodes:
                members.append(_member_from_spec(node_spec))
            layers.append(Layer(members, layer_spec.config))
        return cls(layers, spec.config, spec.name)

    def __nons_member__(self, node_id: str | None = None) -> NetworkNode:
        """This network as a layer member or router branch (see `nons.core.subnetwork`)."""
        return NetworkNode(self, node_id)

    def save(self, path: str | Path) -> None:
        """Write the spec to a `.json`, `.yaml` or `.yml` file."""
        save_spec(self._spec, path)

    @classmethod
    def load(cls, path: str | Path) -> NoN:
        """Read a network from a spec file."""
        return cls.from_spec(load_spec(path))

    def nodes(self) -> Iterator[tuple[int, LayerMember]]:
        """Every node with its layer index, in order; a router is followed by its branches.

        Branch nodes are served by actors like any node, so whatever serves a network's
        nodes (the actor host, breakers, `--node` checks) sees them here.
        """
        for index, layer in enumerate(self.layers):
            for node in layer.nodes:
                yield index, node
                if isinstance(node, Router):
                    for branch in node.members():
                        yield index, branch

    def get_node(self, node_id: str) -> LayerMember:
        """The node with this id.

        Raises:
            ConfigurationError: no such node.
        """
        for _, node in self.nodes():
            if node.node_id == node_id:
                return node
        raise ConfigurationError(f"network {self.name!r} has no node {node_id!r}")

    def networks(self) -> Iterator[NoN]:
        """This network and every sub-network below it, depth first."""
        yield self
        for _, node in self.nodes():
            if isinstance(node, NetworkNode):
                yield from node.network.networks()

    def subscribe(self, event_type: str, callback: EventCallback) -> None:
        """Call `callback` with every event of `event_type` (`*` for all) of this network's runs.

        Callbacks run in the caller's process while `forward()` runs; one that raises is
        logged and never breaks the execution.
        """
        self._subscribers.setdefault(event_type, []).append(callback)

    @property
    def subscribers(self) -> dict[str, list[EventCallback]]:
        """Registered event callbacks by event type."""
        return self._subscribers

    async def forward(
        self,
        input: Content | ExecutionResult,
        *,
        client: NetworkExecutor | None = None,
        execution_id: str | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ExecutionResult:
        """Run the network once over NATS and return its result.

        With no `client`, the runtime configured by `NONS_NATS_URL` is used, or else an
        embedded nats-server with in-process actors is started on first use.

        Raises:
            ExecutionError: the typed error of a failed execution (`.result` holds it).
        """
        value: Content = input.output if isinstance(input, ExecutionResult) else input
        executor = client or await get_runtime().default_executor()
        result = await executor.run_network(
            self,
            value,
            execution_id=execution_id,
            timeout_s=timeout_s,
            budget_usd=budget_usd,
            metadata=metadata,
        )
        return result.raise_for_status()

    async def forward_batch(
        self,
        inputs: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: int | None = None,
        client: NetworkExecutor | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
        raise_on_failure: bool = False,
        mode: ExecutionMode = "online",
    ) -> list[IndexedResult]:
        """Run the network once per input, `concurrency` at a time; results in input order.

        Unlike `forward()`, a failed item does not raise: its result has
        `status == "failed"` and an `error`, and the other items run on. Inputs are
        read lazily (never more than `concurrency` ahead); an `ExecRequest` item
        carries its own execution id, timeout, budget and metadata.

        `mode="batch"` sends the model calls of each layer, across the items in flight,
        as one Message Batch (half the price; answers within 24 h, usually minutes):
        `concurrency` then defaults to `DEFAULT_BATCH_CONCURRENCY` (256) instead of 8,
        so that a layer's calls share a batch. Anthropic models only (and the mock);
        a call to another provider fails with `batch_unavailable`.

        Raises:
            ConfigurationError: `concurrency` is below 1.
            ExecutionError: only with `raise_on_failure`: the first failure seen (the
                items still running are cancelled).
        """
        runtime = get_runtime()
        executor = client or await runtime.default_executor()
        results: list[IndexedResult] = await runtime.run_batch(
            executor,
            self,
            inputs,
            concurrency=concurrency
            if concurrency is not None
            else (DEFAULT_BATCH_CONCURRENCY if mode == "batch" else 8),
            timeout_s=timeout_s,
            budget_usd=budget_usd,
            metadata=metadata,
            raise_on_failure=raise_on_failure,
            mode=mode,
        )
        return results

    async def stream(
        self,
        inputs: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: int = 8,
        client: NetworkExecutor | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> AsyncGenerator[IndexedResult, None]:
        """Run the network once per input and yield each result as it completes.

        `async for result in net.stream(inputs)`: each result is an `ExecutionResult`
        with an `index` (its input's position), in completion order. Failed items are
        yielded, not raised. Leaving the loop early cancels the executions in flight
        (at once with `contextlib.aclosing`, else when the generator is collected).

        Raises:
            ConfigurationError: `concurrency` is below 1.
        """
        runtime = get_runtime()
        executor = client or await runtime.default_executor()
        stream: AsyncGenerator[IndexedResult, None] = runtime.stream_results(
            executor,
            self,
            inputs,
            concurrency=concurrency,
            timeout_s=timeout_s,
            budget_usd=budget_usd,
            metadata=metadata,
        )
        async with contextlib.aclosing(stream) as results:
            async for result in results:
                yield result

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return f"NoN(name={self.name!r}, layers={[len(layer) for layer in self.layers]})"


def _member_from_spec(spec: NodeSpec) -> LayerMember:
    """Rebuild one member: a router (its branches likewise), a sub-network or a node."""
    if spec.operator == ROUTER_OPERATOR and spec.branches is not None:
        return Router.from_spec(spec, _branch_from_spec)
    return _branch_from_spec(spec)


def _branch_from_spec(spec: NodeSpec) -> Node | NetworkNode:
    if spec.operator == NETWORK_OPERATOR and spec.network is not None:
        return NetworkNode(NoN.from_spec(spec.network), spec.node_id)
    return Node.from_spec(spec)


def _place_layer(index: int, layer: Layer) -> Layer:
    """Prefix derived ids with the layer; repeated ones also get their occurrence number."""
    derived = [node.node_id for node in layer.nodes if not node.has_explicit_id]
    seen: dict[str, int] = {}
    placed: list[LayerMember] = []
    for node in layer.nodes:
        if node.has_explicit_id:
            placed.append(node)
            continue
        node_id = f"l{index}-{node.node_id}"
        if derived.count(node.node_id) > 1:
            occurrence = seen.get(node.node_id, 0)
            seen[node.node_id] = occurrence + 1
            node_id = f"{node_id}-{occurrence}"
        placed.append(node._with_id(node_id, explicit=False))
    return Layer(placed, layer.layer_config, layer.layer_id)


def _members(entry: object, node_kwargs: dict[str, Any]) -> list[LayerMember]:
    if isinstance(entry, str):
        return [Node(entry, **node_kwargs)]
    if isinstance(entry, Node | NetworkNode | Router):
        return [entry]
    if isinstance(entry, NoN):
        return [NetworkNode(entry)]
    if isinstance(entry, list | tuple):
        members: list[LayerMember] = []
        for item in entry:
            if isinstance(item, list | tuple):
                raise ConfigurationError("a parallel layer is one flat list (nested list found)")
            members.extend(_members(item, node_kwargs))
        return members
    raise ConfigurationError(
        f"from_operators takes operator names, Nodes, NoNs, Routers or lists of them, not "
        f"{type(entry).__name__}"
    )
