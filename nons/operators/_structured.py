"""Structured output, and one corrective retry, for the strict LLM operators.

`classify`, `extract`, `validate`, `route` and `compare` need a JSON object back. They
send the object's JSON Schema with the request (`CompletionRequest.output_schema`):
Anthropic makes it a forced tool call and OpenAI a `json_schema` response format, so
a real model answers in the shape. A provider without structured output answers in
text, which the operator parses leniently (JSON inside prose or a code fence, a
category named in a sentence). When even that fails, the model is asked once more,
told what was wrong and what shape is required; a second unusable answer fails the
node with `validation_error`. The mock is never retried: its gaps are filled, marked.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeVar

import msgspec

from nons.core.errors import OperatorValidationError
from nons.operators import _prompts as p
from nons.operators.context import current_context
from nons.providers.base import OutputSchema

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from nons.providers.base import Completion, CompletionRequest

__all__ = (
    "CORRECTIVE_RETRIES",
    "ask",
    "ask_structured",
    "choice_schema",
    "corrective_prompt",
    "fields_schema",
    "output_schema_for",
)

CORRECTIVE_RETRIES = 1
"""Extra model calls made after an unusable answer, before failing the node."""

_PREVIEW_CHARS = 300
"""How much of the unusable answer the corrective prompt quotes back."""

_T = TypeVar("_T")


def choice_schema(key: str, confidence_key: str, choices: Sequence[str]) -> dict[str, object]:
    """Schema of a classify- or route-style answer: one allowed name, a confidence, reasons."""
    return _object(
        {
            key: {"type": "string", "enum": list(choices)},
            confidence_key: {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string"},
        }
    )


def fields_schema(fields: Sequence[str] | None) -> dict[str, object]:
    """Schema of an `extract` answer: exactly `fields` (null when absent), or any object."""
    if not fields:
        return {"type": "object"}
    return _object({name: {"description": f"the {name}, or null if not given"} for name in fields})


def output_schema_for(operator: str, schema: dict[str, object]) -> OutputSchema:
    """The request's `OutputSchema` for one operator's answer."""
    return OutputSchema(
        name=f"{operator}_result",
        schema=schema,
        description=f"Record the {operator} answer. Call it exactly once, with the whole answer.",
    )


def corrective_prompt(
    prompt: str, answer: str, error: OperatorValidationError, schema: dict[str, object]
) -> str:
    """The original prompt, then what was wrong with the answer and the shape required."""
    preview = answer[:_PREVIEW_CHARS] + ("..." if len(answer) > _PREVIEW_CHARS else "")
    return p.sections(
        ("Original request", prompt),
        ("Your previous answer", preview or "(empty)"),
        ("Why it was not accepted", str(error)),
        (
            "Answer again",
            "Reply with only a JSON object (no prose, no code fences) that matches this "
            "JSON Schema:\n" + json.dumps(schema, ensure_ascii=False),
        ),
    )


async def ask_structured(
    name: str,
    system: str,
    prompt: str,
    schema: dict[str, object],
    parse: Callable[[p.Reply], _T],
    *,
    choices: Sequence[str] = (),
) -> _T:
    """Ask for a JSON answer of `schema` and parse it, with one corrective retry.

    Raises:
        OperatorValidationError: the answer was unusable, twice.
        ProviderError: the provider failed.
    """
    reply = await ask(name, system, prompt, schema=schema, choices=choices)
    for _ in range(CORRECTIVE_RETRIES):
        try:
            return parse(reply)
        except OperatorValidationError as error:
            if reply.is_mock:
                raise
            retry = corrective_prompt(prompt, reply.text, error, schema)
            reply = await ask(name, system, retry, schema=schema, choices=choices)
    return parse(reply)


async def ask(
    name: str,
    system: str,
    prompt: str,
    *,
    schema: dict[str, object] | None = None,
    choices: Sequence[str] = (),
) -> p.Reply:
    """One model call through the current node's context, recorded for accounting.

    With `schema`, the request asks for JSON in that shape (structured output where
    the provider has it); the reply's `data` is the structured answer, or else the
    first JSON object of its text.

    Raises:
        ProviderError: the provider failed.
    """
    context = current_context()
    if schema is None:
        text = await context.complete(prompt, system=system, choices=choices)
        last = context.last_completion
        is_mock = bool(last is not None and last.is_mock)
        return p.Reply(operator=name, text=text.strip(), is_mock=is_mock, data=None)
    request = context.build_request(prompt, system=system, response_format="json", choices=choices)
    request = msgspec.structs.replace(request, output_schema=output_schema_for(name, schema))
    completion = await _send(request)
    context.completions.append(completion)
    structured = completion.data
    return p.Reply(
        operator=name,
        text=completion.text.strip(),
        is_mock=completion.is_mock,
        data=dict(structured) if structured is not None else p.parse_json_object(completion.text),
    )


async def _send(request: CompletionRequest) -> Completion:
    """`OperatorContext.complete` for a prepared request: streamed when the node streams."""
    from nons.providers.registry import complete as provider_complete

    context = current_context()
    if context.stream:
        # The context's own stream reader passes deltas on and checks the final answer.
        return await context._stream(request)
    return await provider_complete(request)


def _object(properties: dict[str, object]) -> dict[str, object]:
    return {"type": "object", "properties": properties, "required": list(properties)}
