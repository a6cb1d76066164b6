"""Structured output of the strict LLM operators, on the real SDKs against the fake APIs.

Anthropic gets a forced tool call whose input schema is the operator's answer shape;
a provider that does not enforce a shape (the fake chat API answering prose) is read
leniently; an unusable answer gets one corrective retry, then `validation_error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from nons.core.errors import OperatorValidationError
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from tests.support.fake_anthropic import FakeAnthropic, message_response, tool_use_response
from tests.support.fake_http import ScriptedResponse
from tests.support.fake_openai import FakeOpenAI, chat_body

if TYPE_CHECKING:
    from collections.abc import Iterator

API_KEY = "sk-ant-structured-test-SECRET"
ANTHROPIC = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-haiku-4-5")
OPENAI = ModelConfig(provider=ModelProvider.OPENAI, model_name="gpt-4o-mini")
CATEGORIES = ["bug", "question", "feature request"]
PROSE = "I cannot say; it depends on what you mean."


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    answers = {
        "classify_result": {"category": "bug", "confidence": 0.92, "reasoning": "it crashes"},
        "extract_result": {"name": "Ada", "born": 1815},
    }
    with FakeAnthropic(api_key=API_KEY, tool_inputs=answers) as server:
        registry.configure_providers(
            ProviderSettings(
                anthropic_api_key=API_KEY,
                anthropic_base_url=server.base_url,
                max_retries=0,
                default_provider=ModelProvider.ANTHROPIC,
            )
        )
        try:
            yield server
        finally:
            registry.reset_providers()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        registry.configure_providers(
            ProviderSettings(
                openai_api_key="sk-openai-test", openai_base_url=server.base_url, max_retries=0
            )
        )
        try:
            yield server
        finally:
            registry.reset_providers()


def _body(fake: FakeAnthropic, index: int = -1) -> dict[str, Any]:
    body = fake.message_requests[index].body
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("stream", [False, True])
async def test_classify_forces_a_tool_call_and_reads_its_input(
    fake: FakeAnthropic, stream: bool
) -> None:
    node = Node("classify", ANTHROPIC, categories=CATEGORIES, stream=stream)
    result = await node.execute("The app crashes when I press save.")
    assert result.output == {"category": "bug", "confidence": 0.92, "reasoning": "it crashes"}
    assert not result.is_mock
    assert result.usage.prompt_tokens == 12
    assert result.usage.completion_tokens == 7
    assert result.cost.total_cost_usd > 0
    body = _body(fake)
    assert body.get("stream", False) is stream
    assert body["tool_choice"] == {"type": "tool", "name": "classify_result"}
    (tool,) = body["tools"]
    assert tool["name"] == "classify_result"
    schema = tool["input_schema"]
    assert schema["type"] == "object"
    assert schema["properties"]["category"]["enum"] == CATEGORIES
    assert set(schema["required"]) == {"category", "confidence", "reasoning"}
    assert len(fake.message_requests) == 1


async def test_extract_with_fields_reads_the_tool_input(fake: FakeAnthropic) -> None:
    node = Node("extract", ANTHROPIC, fields=["name", "born", "died"])
    result = await node.execute("Ada Lovelace was born in 1815.")
    assert result.output == {"name": "Ada", "born": 1815, "died": None}
    schema = _body(fake)["tools"][0]["input_schema"]
    assert schema["required"] == ["name", "born", "died"]


@pytest.mark.parametrize(
    ("operator", "arguments", "tool_input", "expected"),
    [
        (
            "validate",
            {},
            {"is_valid": False, "validation_reasoning": "wrong date", "confidence": 0.7},
            {"is_valid": False, "validation_reasoning": "wrong date", "confidence": 0.7},
        ),
        (
            "route",
            {"available_paths": ["billing", "support"]},
            {"selected_path": "support", "routing_confidence": 0.8, "reasoning": "a how-to"},
            {"selected_path": "support", "routing_confidence": 0.8, "reasoning": "a how-to"},
        ),
        (
            "compare",
            {"content_b": "B"},
            {"differences": ["tone"], "similarities": ["facts"], "conclusion": "A wins"},
            {"differences": ["tone"], "similarities": ["facts"], "conclusion": "A wins"},
        ),
    ],
)
async def test_every_strict_operator_asks_for_its_shape(
    fake: FakeAnthropic,
    operator: str,
    arguments: dict[str, Any],
    tool_input: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    fake.tool_inputs[f"{operator}_result"] = tool_input
    node = Node(operator, ANTHROPIC, **arguments)
    result = await node.execute("A" if operator == "compare" else "some content")
    assert result.output == expected
    body = _body(fake)
    assert body["tool_choice"] == {"type": "tool", "name": f"{operator}_result"}
    assert set(body["tools"][0]["input_schema"]["required"]) == set(expected)


async def test_text_operators_send_no_tool(fake: FakeAnthropic) -> None:
    await Node("transform", ANTHROPIC).execute("text")
    assert "tools" not in _body(fake)
    assert "tool_choice" not in _body(fake)


async def test_a_prose_answer_naming_the_category_is_accepted(fake: FakeAnthropic) -> None:
    fake.enqueue(
        message_response(
            "Category: question\nConfidence: 0.7\nReasoning: the user asks whether this "
            "is a bug or a missing feature."
        )
    )
    result = await Node("classify", ANTHROPIC, categories=CATEGORIES).execute("is this a bug?")
    assert result.output == {
        "category": "question",
        "confidence": 0.7,
        "reasoning": "the user asks whether this is a bug or a missing feature.",
    }
    assert len(fake.message_requests) == 1


async def test_an_unusable_answer_gets_one_corrective_retry(fake: FakeAnthropic) -> None:
    fake.enqueue(
        message_response(PROSE, input_tokens=10, output_tokens=5),
        tool_use_response(
            "classify_result",
            {"category": "feature request", "confidence": 0.6, "reasoning": "asks for more"},
            input_tokens=20,
            output_tokens=9,
        ),
    )
    result = await Node("classify", ANTHROPIC, categories=CATEGORIES).execute("add dark mode")
    assert result.output["category"] == "feature request"
    assert len(fake.message_requests) == 2
    retry = _body(fake, 1)
    assert retry["tool_choice"] == {"type": "tool", "name": "classify_result"}
    prompt = retry["messages"][0]["content"]
    assert PROSE in prompt
    assert "not accepted" in prompt
    assert '"enum": ["bug", "question", "feature request"]' in prompt
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 14)


async def test_two_unusable_answers_fail_with_validation_error(fake: FakeAnthropic) -> None:
    fake.enqueue(message_response(PROSE), message_response(PROSE))
    with pytest.raises(OperatorValidationError) as caught:
        await Node("classify", ANTHROPIC, categories=CATEGORIES).execute("hmm")
    assert caught.value.type == "validation_error"
    assert (caught.value.direction, caught.value.rule) == ("output", "format")
    assert len(fake.message_requests) == 2


async def test_a_tool_input_outside_the_enum_is_corrected(fake: FakeAnthropic) -> None:
    fake.enqueue(
        tool_use_response("classify_result", {"category": "spam", "confidence": 1, "reasoning": ""})
    )
    result = await Node("classify", ANTHROPIC, categories=CATEGORIES).execute("buy now")
    assert result.output["category"] == "bug"  # the fake's default tool answer
    assert "'spam' is not one of" in _body(fake, 1)["messages"][0]["content"]


async def test_openai_asks_for_a_json_schema_and_reads_prose_leniently(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.enqueue(
        ScriptedResponse(
            body=chat_body("**Category:** question. I am 80% confident: it asks, not a bug.")
        )
    )
    result = await Node("classify", OPENAI, categories=CATEGORIES).execute("is this a bug?")
    assert result.output["category"] == "question"
    assert result.output["confidence"] == 0.8
    (request,) = fake_openai.requests
    assert isinstance(request.body, dict)
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "classify_result"
    assert response_format["json_schema"]["schema"]["properties"]["category"]["enum"] == (
        CATEGORIES
    )


async def test_openai_prose_without_an_answer_is_retried_once(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(
        ScriptedResponse(body=chat_body(PROSE)),
        ScriptedResponse(
            body=chat_body(
                '```json\n{"is_valid": true, "validation_reasoning": '
                '"fine", "confidence": 0.9}\n```'
            )
        ),
    )
    result = await Node("validate", OPENAI).execute("Water boils at 100 C.")
    assert result.output == {"is_valid": True, "validation_reasoning": "fine", "confidence": 0.9}
    assert len(fake_openai.requests) == 2


async def test_the_mock_keeps_answering_offline_without_retries() -> None:
    mock = ModelConfig(provider=ModelProvider.MOCK)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("classify", {"categories": CATEGORIES}),
        ("extract", {"fields": ["name"]}),
        ("validate", {}),
        ("route", {}),
    ]
    for operator, arguments in cases:
        result = await Node(operator, mock, **arguments).execute("text")
        assert result.is_mock
        assert result.usage.total_tokens > 0
