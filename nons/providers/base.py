"""The protocol every model provider implements, and the request and answer it speaks.

Operators never see an SDK: they build a `CompletionRequest` and get a `Completion`
back, whoever answered it. A provider owns its SDK client, key, base URL, pricing
and error mapping (to `nons.core.errors.ProviderError` subclasses).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import msgspec

from nons.core.types import CostInfo, ModelConfig, TokenUsage

__all__ = ("Completion", "CompletionRequest", "ModelClient", "OutputSchema")


class OutputSchema(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON shape an operator wants back, for providers with structured output.

    Anthropic sends it as one tool the model is forced to call (the tool's input is
    the answer); OpenAI as a `json_schema` response format. A provider without
    structured output ignores it, and the operator parses the text leniently.
    """

    name: str
    """Name of the shape: letters, digits, `_` and `-` (the tool's or schema's name)."""
    schema: dict[str, object]
    """JSON Schema of the answer; an object schema."""
    description: str = ""
    """What the answer is, for the model."""


class CompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One model call as an operator asks for it."""

    prompt: str
    """The user message."""
    config: ModelConfig
    """Model, temperature, token limit... of the node making the call."""
    system: str | None = None
    """System prompt (the node's `ModelConfig.system_prompt` wins when set)."""
    operator: str = "generate"
    """The calling operator, for the mock's deterministic answers and for spans."""
    response_format: Literal["text", "json"] = "text"
    """`json` when the operator parses the answer as a JSON object."""
    choices: tuple[str, ...] = ()
    """Allowed answers (classify categories, route names), so the mock can pick one."""
    output_schema: OutputSchema | None = None
    """The answer's JSON shape, for structured output (`None`: free text or plain JSON)."""
    prompt_cache: bool = True
    """Whether the provider may mark the prompt prefix for its prompt cache (Anthropic
    does when the prefix is long enough; `False` never sends `cache_control`)."""


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """A model's answer with what it cost."""

    text: str
    """The generated text."""
    provider: str
    """Provider that answered (`anthropic`, `openai`, `mock`)."""
    request_model: str
    """Model id that was asked for."""
    response_model: str
    """Model id the provider says answered."""
    usage: TokenUsage
    """Token counts as reported (estimated for the mock)."""
    cost: CostInfo
    """Cost from the provider's pricing table (zero for the mock and unknown models)."""
    finish_reason: str | None = None
    """Why generation stopped (`end_turn`, `max_tokens`, `stop_sequence`...)."""
    is_mock: bool = False
    """True when no real model produced `text`."""
    response_id: str | None = None
    """Provider's id of the response, when it gives one."""
    data: dict[str, object] | None = None
    """The structured answer (the forced tool call's input), when the provider gave one."""


@runtime_checkable
class ModelClient(Protocol):
    """A provider adapter: one per provider per process, shared by all nodes."""

    @property
    def name(self) -> str:
        """The provider's name as in `ModelProvider`."""
        ...

    def default_model(self) -> str:
        """The model used when a node's `ModelConfig.model_name` is `None`."""
        ...

    async def complete(self, request: CompletionRequest) -> Completion:
        """Run one call.

        Raises:
            ProviderError: a subclass saying whether a retry may help.
        """
        ...

    async def aclose(self) -> None:
        """Release the SDK client's connections."""
        ...
