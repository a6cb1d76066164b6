"""Lenient reading of prose answers, and the one corrective retry of the strict operators."""

from __future__ import annotations

from typing import Any

import pytest

from nons.core.errors import OperatorValidationError
from nons.core.types import CostInfo, ModelConfig, ModelProvider, TokenUsage
from nons.operators import get_operator
from nons.operators._lenient import (
    choice_in_prose,
    confidence_in_prose,
    prose_answer,
    reasoning_in_prose,
)
from nons.operators._structured import choice_schema, corrective_prompt, fields_schema
from nons.operators.context import OperatorContext, use_context
from nons.providers import registry as provider_registry
from nons.providers.base import Completion, CompletionRequest

CATEGORIES = ["bug", "question", "feature request"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("question", "question"),
        ("Category: question\nReasoning: it mentions a bug but asks how.", "question"),
        ("**Category:** feature request, not a bug", "feature request"),
        ("> Answer - Bug.", "bug"),
        ("bug\n\nThe user asks whether it is a question.", "bug"),
        ("This looks like a feature request to me.", "feature request"),
        ("It could be a bug or a question.", None),
        ("I cannot tell.", None),
        ("Category: unknown", None),
    ],
)
def test_choice_in_prose(text: str, expected: str | None) -> None:
    assert choice_in_prose(text, CATEGORIES) == expected


def test_a_route_label_names_the_path() -> None:
    assert choice_in_prose("Selected path: support. Billing is wrong.", ["billing", "support"]) == (
        "support"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Confidence: 0.85", 0.85),
        ("confidence of 70%", 0.7),
        ("I am 90% confident it is a bug.", 0.9),
        ("I'm fairly sure (95% certain).", 0.95),
        ("I am confident, for 2 reasons.", None),
        ("no number here", None),
    ],
)
def test_confidence_in_prose(text: str, expected: float | None) -> None:
    assert confidence_in_prose(text) == expected


def test_reasoning_in_prose() -> None:
    assert reasoning_in_prose("Category: bug\nReasoning: it  crashes.", "bug") == "it crashes."
    assert reasoning_in_prose("It is a bug: it crashes.", "bug") == "It is a bug: it crashes."
    assert reasoning_in_prose("Bug.", "bug") is None
    assert len(reasoning_in_prose("a bug " + "x" * 900, "bug") or "") == 500


def test_prose_answer_stands_for_the_json_object() -> None:
    text = "Category: question\nConfidence: 0.6\nReasoning: asks how."
    assert prose_answer(text, "category", "confidence", CATEGORIES) == {
        "category": "question",
        "confidence": 0.6,
        "reasoning": "asks how.",
    }
    assert prose_answer("No idea.", "category", "confidence", CATEGORIES) is None


def test_schemas_of_the_answers() -> None:
    schema = choice_schema("category", "confidence", CATEGORIES)
    assert schema["type"] == "object"
    assert schema["required"] == ["category", "confidence", "reasoning"]
    assert fields_schema(None) == {"type": "object"}
    assert fields_schema(["a", "b"])["required"] == ["a", "b"]


def test_corrective_prompt_says_what_was_wrong_and_what_is_required() -> None:
    error = OperatorValidationError(
        "classify output: $: bad (format)",
        operator="classify",
        direction="output",
        field="$",
        rule="format",
    )
    prompt = corrective_prompt("Classify this.", "Well...", error, {"type": "object"})
    assert prompt.startswith("Original request:\nClassify this.")
    assert "Your previous answer:\nWell..." in prompt
    assert "classify output: $: bad (format)" in prompt
    assert prompt.endswith('JSON Schema:\n{"type": "object"}')


# Operators on a provider without structured output (plain text answers).


def _text_provider(monkeypatch: pytest.MonkeyPatch, *replies: str) -> list[CompletionRequest]:
    requests: list[CompletionRequest] = []
    queue = list(replies)

    async def fake_complete(request: CompletionRequest) -> Completion:
        requests.append(request)
        return Completion(
            text=queue.pop(0),
            provider="openai",
            request_model="local-model",
            response_model="local-model",
            usage=TokenUsage(prompt_tokens=10, completion_tokens=5),
            cost=CostInfo(),
        )

    monkeypatch.setattr(provider_registry, "complete", fake_complete)
    return requests


async def _run(name: str, input: Any, **arguments: Any) -> tuple[Any, OperatorContext]:
    context = OperatorContext(
        operator=name, model_config=ModelConfig(provider=ModelProvider.OPENAI)
    )
    with use_context(context):
        return await get_operator(name).invoke(input, arguments), context


async def test_classify_accepts_prose_naming_one_category(monkeypatch: pytest.MonkeyPatch) -> None:
    requests = _text_provider(
        monkeypatch, "Category: question. It asks whether this is a bug. Confidence: 0.75"
    )
    output, context = await _run("classify", "is it a bug?", categories=CATEGORIES)
    assert output["category"] == "question"
    assert output["confidence"] == 0.75
    assert "asks whether" in output["reasoning"]
    (request,) = requests
    assert request.output_schema is not None
    assert request.output_schema.name == "classify_result"
    assert len(context.completions) == 1


async def test_route_accepts_prose_naming_one_path(monkeypatch: pytest.MonkeyPatch) -> None:
    _text_provider(monkeypatch, "Route: billing\nReason: it is about an invoice, not support.")
    output, _ = await _run("route", "my invoice", available_paths=["billing", "support"])
    assert output["selected_path"] == "billing"
    assert output["reasoning"] == "it is about an invoice, not support."


async def test_prose_without_an_answer_gets_exactly_one_corrective_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = _text_provider(monkeypatch, "Hard to say.", "Still hard to say.")
    with pytest.raises(OperatorValidationError) as caught:
        await _run("classify", "x", categories=CATEGORIES)
    assert caught.value.type == "validation_error"
    assert (caught.value.direction, caught.value.rule) == ("output", "format")
    assert "Still hard to say." in str(caught.value)
    first, retry = requests
    assert "Hard to say." in retry.prompt
    assert first.prompt in retry.prompt
    assert retry.output_schema == first.output_schema
    assert retry.system == first.system


@pytest.mark.parametrize("name", ["extract", "validate", "compare"])
async def test_json_in_prose_after_a_corrective_retry(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    answer = {
        "extract": '{"fact": "water boils"}',
        "validate": '{"is_valid": true, "validation_reasoning": "ok", "confidence": 0.9}',
        "compare": '{"differences": [], "similarities": ["x"], "conclusion": "same"}',
    }[name]
    requests = _text_provider(monkeypatch, "Sure, here it is.", f"Here:\n```json\n{answer}\n```")
    output, context = await _run(name, ["a", "b"])
    assert output
    assert len(requests) == 2
    assert len(context.completions) == 2  # both calls are accounted for


async def test_the_mock_is_never_retried() -> None:
    context = OperatorContext(
        operator="classify", model_config=ModelConfig(provider=ModelProvider.MOCK)
    )
    with use_context(context):
        output = await get_operator("classify").invoke("text", {"categories": CATEGORIES})
    assert output["category"] in CATEGORIES
    assert len(context.completions) == 1
