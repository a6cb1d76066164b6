"""A node: one operator with its configuration, the unit of work an actor runs.

A node's id must be the same in every process that loads its network, because it
names the node's NATS subject; ids are therefore given by the user or derived from
the operator name, the copy index of `node * n` and, inside a network, the layer.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any

from nons.core.errors import (
    ConfigurationError,
    ExecutionError,
    OperatorError,
    TransientOperatorError,
    is_transient,
)
from nons.core.names import validate_token
from nons.core.results import NodeResult
from nons.core.spec import NodeSpec
from nons.core.types import Content, CostInfo, ModelConfig, TokenUsage
from nons.operators.context import OperatorContext, use_context
from nons.operators.registry import OperatorDefinition, resolve_operator

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

__all__ = ("Node",)

_NO_FALLBACK: Any = object()


class Node:
    """An operator plus its prompt context, model configuration and bound arguments.

    Example:
        >>> classify = Node("classify", categories=["bug", "question"])
        >>> voters = Node("generate", model_config=ModelConfig(temperature=1.0)) * 3
    """

    def __init__(
        self,
        operator_name: str | Callable[..., Any],
        model_config: ModelConfig | None = None,
        additional_prompt_context: str = "",
        node_id: str | None = None,
        *,
        arguments: Mapping[str, Any] | None = None,
        fallback_output: Content = _NO_FALLBACK,
        cache: bool | None = None,
        stream: bool = False,
        model_selector: str | None = None,
        prompt_cache: bool = True,
        **operator_arguments: Any,
    ) -> None:
        """Create a node.

        Args:
            operator_name: a registered operator name, or an `@operator` function.
            model_config: model for every LLM call of the node (process default if `None`).
            additional_prompt_context: appended to the operator's system prompt.
            node_id: explicit id; otherwise derived deterministically from the operator.
            arguments: operator arguments bound to the node (merged with keyword ones).
            fallback_output: output used, and marked as such, when every attempt failed.
            cache: serve repeated identical calls from the actors' cache: `True` at any
                temperature, `False` never, `None` (auto) when the network's
                `NetworkConfig.cache` is set and the temperature is 0.
            stream: stream the model's text, published as `node.delta` events.
            model_selector: `module:function` called in the coordinator before each
                call to choose its `ModelConfig` (see `nons.runtime.model_stats`).
            prompt_cache: let the provider cache the prompt prefix (Anthropic, when it
                is long enough) and the coordinator warm it for the node's layer;
                `False` never marks it (see `NetworkConfig.prompt_cache`).
            **operator_arguments: further bound operator arguments, e.g. `categories=[...]`.

        Raises:
            UnknownOperatorError: the operator is not registered (or importable).
            ConfigurationError: an argument the operator does not accept, or a
                `model_selector` that is not a `module:function` path.
            InvalidNameError: `node_id` is not a subject token.
        """
        definition = _definition_of(operator_name)
        self._definition = definition
        self.operator_name: str = definition.name
        self.model_config: ModelConfig | None = model_config
        self.additional_prompt_context: str = additional_prompt_context
        self.arguments: dict[str, Any] = {**(arguments or {}), **operator_arguments}
        self.fallback_output: Content = None
        self.has_fallback_output = fallback_output is not _NO_FALLBACK
        if self.has_fallback_output:
            self.fallback_output = fallback_output
        self._explicit_id = node_id is not None
        self.node_id: str = validate_token(node_id or definition.name, "node id")
        self.cache: bool | None = cache
        self.stream: bool = stream
        self.model_selector: str | None = _check_selector(model_selector)
        self.prompt_cache: bool = prompt_cache
        _check_arguments(definition, self.arguments)

    @property
    def operator(self) -> OperatorDefinition:
        """The registered operator this node runs."""
        return self._definition

    @property
    def has_explicit_id(self) -> bool:
        """Whether the user chose the id (a network keeps it as it is)."""
        return self._explicit_id

    def clone(self, new_node_id: str | None = None) -> Node:
        """A copy with the same configuration, under `new_node_id` when given."""
        copy = Node(
            self._definition.function,
            self.model_config,
            self.additional_prompt_context,
            arguments=self.arguments,
            cache=self.cache,
            stream=self.stream,
            model_selector=self.model_selector,
            prompt_cache=self.prompt_cache,
        )
        copy.has_fallback_output = self.has_fallback_output
        copy.fallback_output = self.fallback_output
        copy.node_id = validate_token(new_node_id or self.node_id, "node id")
        copy._explicit_id = self._explicit_id if new_node_id is None else True
        return copy

    def _with_id(self, node_id: str, *, explicit: bool) -> Node:
        copy = self.clone(node_id)
        copy._explicit_id = explicit
        return copy

    def __mul__(self, count: int) -> list[Node]:
        """`count` parallel copies with distinct, deterministic ids (`<id>-0`, `<id>-1`...)."""
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigurationError(f"a node can be multiplied by a positive int, not {count!r}")
        return [
            self._with_id(f"{self.node_id}-{index}", explicit=self._explicit_id)
            for index in range(count)
        ]

    __rmul__ = __mul__

    def configure_model(self, **settings: Any) -> None:
        """Change model settings; names that are not `ModelConfig` fields go to `extra_params`."""
        import msgspec

        base = self.model_config or ModelConfig()
        fields = set(base.__struct_fields__)
        known = {key: value for key, value in settings.items() if key in fields}
        extra = {key: value for key, value in settings.items() if key not in fields}
        if extra:
            known["extra_params"] = {**base.extra_params, **extra}
        self.model_config = msgspec.structs.replace(base, **known)

    async def execute(
        self,
        input: Content,
        *,
        model_config: ModelConfig | None = None,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
        prompt_cache: bool | None = None,
    ) -> NodeResult:
        """Run the node once, in this process: what an actor does for one node call.

        Args:
            input: a JSON object is passed as keyword arguments, anything else as the
                operator's first argument.
            model_config: overrides the node's model for this call (fallback models,
                cost-based routing).
            on_delta: told each text delta of the model's answer as it arrives, when
                the node streams (`stream=True`).
            prompt_cache: overrides the node's `prompt_cache` (the actor passes `False`
                when the network turned prompt caching off).

        Returns:
            The output with the usage, cost and provider of every model call made.

        Raises:
            OperatorValidationError: input or output violates the operator's schema.
            ProviderError: the model provider failed (a subclass says if retryable).
            OperatorError: the operator's own code raised; retryable (a
                `TransientOperatorError`) when the exception is transient (`TimeoutError`,
                `ConnectionError`, `RetryableError`, an HTTP transport error).
        """
        config = model_config or self.model_config or ModelConfig()
        context = OperatorContext(
            node_id=self.node_id,
            operator=self.operator_name,
            model_config=config,
            prompt_context=self.additional_prompt_context,
            stream=self.stream,
            on_delta=on_delta,
            prompt_cache=self.prompt_cache if prompt_cache is None else prompt_cache,
        )
        started = time.perf_counter()
        with use_context(context):
            try:
                output = await self._definition.invoke(input, self.arguments)
            except ExecutionError:
                raise
            except Exception as exc:
                error_class = TransientOperatorError if is_transient(exc) else OperatorError
                raise error_class(
                    f"node {self.node_id!r} ({self.operator_name}) raised "
                    f"{type(exc).__name__}: {exc}",
                    details={
                        "node_id": self.node_id,
                        "operator": self.operator_name,
                        "exception": type(exc).__name__,
                    },
                ) from exc
        completions = context.completions
        last = completions[-1] if completions else None
        return NodeResult(
            node_id=self.node_id,
            operator=self.operator_name,
            output=output,
            usage=sum((c.usage for c in completions), TokenUsage()),
            cost=sum((c.cost for c in completions), CostInfo()),
            provider=last.provider if last else None,
            model=last.response_model if last else None,
            is_mock=any(c.is_mock for c in completions),
            duration_ms=(time.perf_counter() - started) * 1000.0,
        )

    def to_spec(self) -> NodeSpec:
        """The serialisable form of this node."""
        module = self._definition.module
        return NodeSpec(
            node_id=self.node_id,
            operator=self.operator_name,
            operator_module=None if module.startswith("nons.operators") else module,
            model=self.model_config,
            prompt_context=self.additional_prompt_context,
            arguments=dict(self.arguments),
            fallback_output=self.fallback_output,
            has_fallback_output=self.has_fallback_output,
            cache=self.cache,
            stream=self.stream,
            model_selector=self.model_selector,
            prompt_cache=self.prompt_cache,
        )

    @classmethod
    def from_spec(cls, spec: NodeSpec) -> Node:
        """Rebuild a node from its spec, importing a custom operator's module if needed."""
        definition = resolve_operator(spec.operator, spec.operator_module)
        fallback = {"fallback_output": spec.fallback_output} if spec.has_fallback_output else {}
        return cls(
            definition.function,
            spec.model,
            spec.prompt_context,
            spec.node_id,
            arguments=spec.arguments,
            cache=spec.cache,
            stream=spec.stream,
            model_selector=spec.model_selector,
            prompt_cache=spec.prompt_cache,
            **fallback,
        )

    def __repr__(self) -> str:
        return f"Node({self.operator_name!r}, node_id={self.node_id!r})"


def _definition_of(operator: str | Callable[..., Any]) -> OperatorDefinition:
    if isinstance(operator, str):
        return resolve_operator(operator, None)
    registered = getattr(operator, "__nons_operator__", None)
    if isinstance(registered, OperatorDefinition):
        return registered
    raise ConfigurationError(
        f"{operator!r} is not an operator: decorate it with @operator or pass its name"
    )


def _check_selector(path: str | None) -> str | None:
    """Check a `module:function` selector path's shape; it is imported where it runs."""
    if path is None:
        return None
    module, _, attribute = path.partition(":")
    if not module.strip() or not attribute.strip() or " " in path:
        raise ConfigurationError(
            f"model_selector must be an importable 'module:function' path, not {path!r}"
        )
    return path


def _check_arguments(definition: OperatorDefinition, arguments: Mapping[str, Any]) -> None:
    parameters = inspect.signature(definition.function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(arguments) - set(parameters))
    if unknown:
        raise ConfigurationError(
            f"operator {definition.name!r} takes no argument(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(parameters)}"
        )
