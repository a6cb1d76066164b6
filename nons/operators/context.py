"""The per-call context through which an operator reaches its node's model.

An operator function only receives its arguments; the node that runs it sets an
`OperatorContext` (model configuration, prompt context) in a context variable, and
the operator's model calls go through it, so every LLM operator honours its node's
configuration and every completion is accounted for.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from nons.core.errors import ProviderError
from nons.core.types import ModelConfig
from nons.providers.base import Completion, CompletionRequest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

__all__ = ("OperatorContext", "call_model", "current_context", "use_context")

DEFAULT_OPERATOR = "custom"
"""Operator name of the context used when no node set one (a direct function call)."""

_CURRENT: contextvars.ContextVar[OperatorContext | None] = contextvars.ContextVar(
    "nons_operator_context", default=None
)


@dataclass(kw_only=True)
class OperatorContext:
    """What one operator call needs to reach the model, and what it spent."""

    operator: str = DEFAULT_OPERATOR
    """The calling operator's registered name (the mock and spans use it)."""
    node_id: str | None = None
    """The node running the operator; `None` for a direct call."""
    model_config: ModelConfig = field(default_factory=ModelConfig)
    """Model, temperature, token limit and system prompt override of the node."""
    prompt_context: str = ""
    """The node's additional prompt context, appended to the system prompt."""
    completions: list[Completion] = field(default_factory=list)
    """Every completion of this call, in order, for usage and cost accounting."""
    stream: bool = False
    """Stream model calls through the provider's `stream()`, handing deltas to `on_delta`."""
    on_delta: Callable[[str], Awaitable[None]] | None = None
    """Told each text delta of a streamed model call as it arrives (the actor publishes it)."""
    prompt_cache: bool = True
    """Whether the node's model calls may use the provider's prompt cache."""

    async def complete(
        self,
        prompt: str,
        *,
        system: str | None = None,
        response_format: Literal["text", "json"] = "text",
        choices: Sequence[str] = (),
    ) -> str:
        """Ask the node's model, record the completion and return its text.

        Args:
            prompt: the user message.
            system: the operator's system prompt (the node's
                `ModelConfig.system_prompt` replaces it when set).
            response_format: `json` when the answer is parsed as a JSON object.
            choices: the allowed answers, when there is a closed set.

        Raises:
            ProviderError: the provider failed (a subclass says whether to retry).
        """
        from nons.providers.registry import complete as provider_complete

        request = self.build_request(
            prompt, system=system, response_format=response_format, choices=choices
        )
        if self.stream:
            completion = await self._stream(request)
        else:
            completion = await provider_complete(request)
        self.completions.append(completion)
        return completion.text

    async def _stream(self, request: CompletionRequest) -> Completion:
        """Read the provider's stream, passing deltas on; return its final completion."""
        from nons.providers.registry import stream as provider_stream
        from nons.providers.streaming import aclose_stream

        items = provider_stream(request)
        completion: Completion | None = None
        try:
            async for item in items:
                if isinstance(item, Completion):
                    completion = item
                elif self.on_delta is not None and item:
                    await self.on_delta(item)
        finally:
            await aclose_stream(items)
        if completion is None:
            raise ProviderError(
                f"the {request.config.provider or 'default'} provider's stream ended "
                "without a final answer",
                details={"operator": self.operator},
            )
        return completion

    def build_request(
        self,
        prompt: str,
        *,
        system: str | None = None,
        response_format: Literal["text", "json"] = "text",
        choices: Sequence[str] = (),
    ) -> CompletionRequest:
        """The request `complete` sends, with the system prompt fully assembled."""
        system_text = self.model_config.system_prompt or system
        if self.prompt_context.strip():
            extra = f"Additional context: {self.prompt_context.strip()}"
            system_text = f"{system_text}\n\n{extra}" if system_text else extra
        return CompletionRequest(
            prompt=prompt,
            config=self.model_config,
            system=system_text,
            operator=self.operator,
            response_format=response_format,
            choices=tuple(choices),
            prompt_cache=self.prompt_cache,
        )

    @property
    def last_completion(self) -> Completion | None:
        """The most recent completion of this call, if any."""
        return self.completions[-1] if self.completions else None


@contextmanager
def use_context(context: OperatorContext) -> Iterator[OperatorContext]:
    """Make `context` the current one for the code (and tasks started) inside."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def current_context() -> OperatorContext:
    """The active context, or a fresh default one (`ModelConfig()`, operator `custom`).

    The default keeps an operator function usable when called directly, outside any
    node; its completions are not collected anywhere.
    """
    context = _CURRENT.get()
    return context if context is not None else OperatorContext()


async def call_model(
    prompt: str,
    *,
    system: str | None = None,
    response_format: Literal["text", "json"] = "text",
    choices: Sequence[str] = (),
) -> str:
    """Ask the current node's model from a custom operator; returns the text.

    Raises:
        ProviderError: the provider failed (a subclass says whether to retry).
    """
    return await current_context().complete(
        prompt, system=system, response_format=response_format, choices=choices
    )
