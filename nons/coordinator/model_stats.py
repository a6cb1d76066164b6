"""Observed model performance in this process, and the selectors that choose models from it.

The coordinator records every node call's model, latency, cost and outcome here, so
that a node's `model_selector` (a `module:function` path, called before each node
call) can pick a model from the task, the remaining budget and what the runtime has
seen: what the NoN docs' `AdaptiveModelSelector` does by hand, kept by the runtime.

Precedence of a node call's model, highest first: the `FALLBACK_MODEL` policy's
fallback on a retry, then the budget reroute to `budget_model` (`node.rerouted`),
then the selector's choice (`model.selected`), then the node's own `model_config`.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import msgspec

from nons.core.errors import ModelSelectionError
from nons.core.types import Content, ModelConfig, ModelProvider

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from nons.core.results import NodeResult

__all__ = (
    "LATENCY_SMOOTHING",
    "AdaptiveModelSelector",
    "ModelSelector",
    "ModelStats",
    "ModelStatsSnapshot",
    "SelectionContext",
    "adaptive_selector",
    "get_model_stats",
    "load_selector",
    "model_stats",
    "record_call",
    "reset_model_stats",
    "select_model",
)

LATENCY_SMOOTHING = 0.2
"""Weight of the newest call in the latency moving average (EWMA)."""


class ModelStatsSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What this process has observed of one `provider:model`."""

    key: str
    """`provider:model`, the key of `get_model_stats()`."""
    provider: str
    """Provider name (`default` when the process default answered unnamed)."""
    model: str
    """Model id as requested (`default` when the provider's default was used)."""
    calls: int = 0
    """Calls recorded (every attempt counts)."""
    successes: int = 0
    """Calls that succeeded."""
    mean_latency_ms: float = 0.0
    """Exponentially weighted mean round trip seen by the coordinator."""
    mean_cost_usd: float = 0.0
    """Mean cost of a successful call."""
    last_used: float = 0.0
    """Unix time of the latest call."""

    @property
    def failures(self) -> int:
        """Calls that failed."""
        return self.calls - self.successes

    @property
    def success_rate(self) -> float:
        """Share of successful calls; 1.0 before any call (an untried model is not penalised)."""
        return self.successes / self.calls if self.calls else 1.0


@dataclass(slots=True)
class _Entry:
    calls: int = 0
    successes: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    last_used: float = 0.0


class ModelStats:
    """Per-model counters of one process, safe to update from any thread."""

    def __init__(self, smoothing: float = LATENCY_SMOOTHING) -> None:
        """Create empty statistics; `smoothing` is the EWMA weight of the newest latency."""
        self._smoothing = smoothing
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}

    def record(
        self, provider: str, model: str, *, duration_ms: float, cost_usd: float, success: bool
    ) -> None:
        """Count one call of `provider:model`."""
        with self._lock:
            entry = self._entries.get((provider, model))
            if entry is None:
                entry = self._entries[provider, model] = _Entry(latency_ms=duration_ms)
            entry.calls += 1
            entry.latency_ms += self._smoothing * (duration_ms - entry.latency_ms)
            entry.last_used = time.time()
            if success:
                entry.successes += 1
                entry.cost_usd += (cost_usd - entry.cost_usd) / entry.successes

    def snapshot(self) -> dict[str, ModelStatsSnapshot]:
        """An immutable copy of every model's figures, keyed `provider:model`."""
        with self._lock:
            return {
                f"{provider}:{model}": ModelStatsSnapshot(
                    key=f"{provider}:{model}",
                    provider=provider,
                    model=model,
                    calls=entry.calls,
                    successes=entry.successes,
                    mean_latency_ms=entry.latency_ms,
                    mean_cost_usd=entry.cost_usd,
                    last_used=entry.last_used,
                )
                for (provider, model), entry in self._entries.items()
            }

    def reset(self) -> None:
        """Forget everything (tests, or after a deployment changes the models)."""
        with self._lock:
            self._entries.clear()


_STATS = ModelStats()


def model_stats() -> ModelStats:
    """The statistics of this process (the coordinator records into them)."""
    return _STATS


def get_model_stats() -> Mapping[str, ModelStatsSnapshot]:
    """What this process has observed per `provider:model`: calls, success rate, latency, cost."""
    return _STATS.snapshot()


def reset_model_stats() -> None:
    """Forget this process's observations."""
    _STATS.reset()


def record_call(requested: ModelConfig | None, result: NodeResult, duration_ms: float) -> None:
    """Record one node call under the model it asked for (or, unnamed, the one that answered).

    Keyed by the requested model so that a selector's choice is what it learns about
    (the mock answers every model name as `mock-1`). Calls that reached no model (a
    skipped node, an open circuit) are not counted.
    """
    error = result.error
    if result.status == "skipped" or (error is not None and error.type == "circuit_open"):
        return
    provider = (
        requested.provider.value
        if requested is not None and requested.provider is not None
        else result.provider or "default"
    )
    model = (
        requested.model_name
        if requested is not None and requested.model_name
        else result.model or "default"
    )
    _STATS.record(
        provider,
        model,
        duration_ms=duration_ms,
        cost_usd=result.cost.total_cost_usd,
        success=result.succeeded,
    )


@dataclass(frozen=True, kw_only=True)
class SelectionContext:
    """What a model selector knows when it chooses a node call's model."""

    network: str
    """The network running."""
    node_id: str
    """The node about to be called."""
    operator: str
    """The node's operator."""
    input: Content
    """The node's input: the task."""
    remaining_budget_usd: float | None
    """Budget left in the execution (`None`: no budget)."""
    stats: Mapping[str, ModelStatsSnapshot]
    """Observed figures per `provider:model` (see `get_model_stats`)."""
    default_model: ModelConfig | None
    """The node's own `model_config` (`None`: the process default)."""
    layer_index: int = 0
    """Layer of the node."""


ModelSelector: TypeAlias = (
    "Callable[[SelectionContext], ModelConfig | None | Awaitable[ModelConfig | None]]"
)
"""A selector: returns the call's model, or `None` to keep the node's own."""

_SELECTORS: dict[str, ModelSelector] = {}


def load_selector(path: str) -> ModelSelector:
    """Import a `module:function` selector (cached per path).

    Raises:
        ModelSelectionError: the module or attribute is missing, or not callable.
    """
    selector = _SELECTORS.get(path)
    if selector is not None:
        return selector
    module_name, _, attribute = path.partition(":")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ModelSelectionError(
            f"model selector {path!r} cannot be imported: {exc}", details={"selector": path}
        ) from exc
    if not callable(target):
        raise ModelSelectionError(
            f"model selector {path!r} is a {type(target).__name__}, not a callable",
            details={"selector": path},
        )
    _SELECTORS[path] = target
    return target


async def select_model(path: str, context: SelectionContext) -> ModelConfig | None:
    """Call the selector at `path` (sync or async) and check what it returns.

    Raises:
        ModelSelectionError: it cannot be imported, it raised, or it returned
            something other than a `ModelConfig` or `None`.
    """
    selector = load_selector(path)
    try:
        chosen = selector(context)
        if inspect.isawaitable(chosen):
            chosen = await chosen
    except Exception as exc:
        raise ModelSelectionError(
            f"model selector {path!r} raised {type(exc).__name__}: {exc}",
            details={"selector": path, "node_id": context.node_id},
        ) from exc
    if chosen is not None and not isinstance(chosen, ModelConfig):
        raise ModelSelectionError(
            f"model selector {path!r} returned a {type(chosen).__name__}, not a ModelConfig",
            details={"selector": path, "node_id": context.node_id},
        )
    return chosen


class AdaptiveModelSelector:
    """The NoN docs' adaptive selector as a ready-made one: complexity, budget, reliability.

    Complexity comes from the input's length; a `high` task gets the `high` model
    while more than `high_budget_usd` is left (or there is no budget), a `medium`
    one the `medium` model, anything else (a `high` one on a thin budget included)
    the `low` model, as in the docs. A tier whose model has been
    seen failing (success rate below `min_success_rate` over at least `min_calls`
    calls) is skipped for the next cheaper healthy one, then the next dearer one.

    Use it as `Node(..., model_selector="nons.runtime.model_stats:adaptive_selector")`,
    or bind your own instance in a module of yours.
    """

    def __init__(
        self,
        *,
        high: ModelConfig | None = None,
        medium: ModelConfig | None = None,
        low: ModelConfig | None = None,
        medium_chars: int = 500,
        high_chars: int = 2000,
        high_budget_usd: float = 0.01,
        min_success_rate: float = 0.9,
        min_calls: int = 3,
    ) -> None:
        """Configure the tiers (defaults: Claude Opus, Sonnet and Haiku, as in the docs)."""
        anthropic = ModelProvider.ANTHROPIC
        self.high = high or ModelConfig(
            provider=anthropic, model_name="claude-opus-4-1", temperature=0.3
        )
        self.medium = medium or ModelConfig(
            provider=anthropic, model_name="claude-sonnet-4-5", temperature=0.5
        )
        self.low = low or ModelConfig(
            provider=anthropic, model_name="claude-haiku-4-5", temperature=0.7
        )
        self.medium_chars = medium_chars
        self.high_chars = high_chars
        self.high_budget_usd = high_budget_usd
        self.min_success_rate = min_success_rate
        self.min_calls = min_calls

    def complexity(self, content: Content) -> str:
        """`low`, `medium` or `high`, from the length of the content as text."""
        length = len(content) if isinstance(content, str) else len(msgspec.json.encode(content))
        if length >= self.high_chars:
            return "high"
        return "medium" if length >= self.medium_chars else "low"

    def __call__(self, context: SelectionContext) -> ModelConfig:
        """The model for this call."""
        tiers = [self.high, self.medium, self.low]
        complexity = self.complexity(context.input)
        budget = context.remaining_budget_usd
        if complexity == "high" and (budget is None or budget > self.high_budget_usd):
            start = 0
        elif complexity == "medium":
            start = 1
        else:
            start = 2
        for model in [*tiers[start:], *reversed(tiers[:start])]:
            if self._healthy(model, context.stats):
                return model
        return tiers[start]

    def _healthy(self, model: ModelConfig, stats: Mapping[str, ModelStatsSnapshot]) -> bool:
        provider = model.provider.value if model.provider is not None else "default"
        seen = stats.get(f"{provider}:{model.model_name or 'default'}")
        return (
            seen is None
            or seen.calls < self.min_calls
            or (seen.success_rate >= self.min_success_rate)
        )


adaptive_selector = AdaptiveModelSelector()
"""A ready-made selector: `model_selector="nons.runtime.model_stats:adaptive_selector"`."""
