"""Operators and selectors for routing and model-selection tests (importable by path)."""

from __future__ import annotations

from nons.core.types import Content, ModelConfig, ModelProvider
from nons.operators.context import current_context
from nons.operators.registry import operator
from nons.runtime.model_stats import AdaptiveModelSelector, SelectionContext

__all__ = (
    "SEEN",
    "adaptive",
    "broken_selector",
    "echo_model",
    "keyword_route",
    "pick_by_length",
    "tag",
)

SEEN: list[SelectionContext] = []
"""Every context `pick_by_length` was called with."""


def _mock(name: str) -> ModelConfig:
    return ModelConfig(provider=ModelProvider.MOCK, model_name=name)


@operator
async def keyword_route(content: Content) -> dict[str, object]:
    """Route by the first word of the text: a deterministic route decision."""
    first = str(content).split()[0] if str(content).split() else ""
    return {"selected_path": first, "routing_confidence": 1.0}


@operator
async def tag(content: Content, label: str = "") -> str:
    """`<label>:<content>`, so a test sees which branch ran on which input."""
    return f"{label}:{content}"


@operator
async def echo_model(content: Content) -> str:
    """The model name the node's call was given (the selector's choice reaches here)."""
    return current_context().model_config.model_name or "default"


def pick_by_length(context: SelectionContext) -> ModelConfig | None:
    """`mock-long` for inputs of 20 characters or more, else keep the node's model."""
    SEEN.append(context)
    return _mock("mock-long") if len(str(context.input)) >= 20 else None


async def broken_selector(context: SelectionContext) -> ModelConfig:
    """A selector that always raises."""
    raise RuntimeError("no model for you")


adaptive = AdaptiveModelSelector(
    high=_mock("mock-large"),
    medium=_mock("mock-medium"),
    low=_mock("mock-small"),
    medium_chars=50,
    high_chars=200,
)
"""The ready-made selector bound to three mock models."""
