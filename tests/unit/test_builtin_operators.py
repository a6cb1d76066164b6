from __future__ import annotations

from typing import Any

import pytest

from nons.core.errors import OperatorValidationError
from nons.core.types import CostInfo, ModelConfig, ModelProvider, TokenUsage
from nons.operators import _prompts, call_model, get_operator
from nons.operators.context import OperatorContext, current_context, use_context
from nons.providers import registry as provider_registry
from nons.providers.base import Completion, CompletionRequest

MOCK = ModelConfig(provider=ModelProvider.MOCK)

LLM_CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("transform", "Hello   world ", {}),
    ("generate", "A haiku about queues", {}),
    ("classify", "I love this product", {}),
    ("extract", "Ada Lovelace was born in 1815 in London.", {}),
    ("condense", "A long text. " * 20, {}),
    ("expand", "NATS is a messaging system.", {}),
    ("compare", ["answer one", "answer two"], {}),
    ("validate", "Water boils at 100 C at sea level.", {}),
    ("route", "What is 2 + 2?", {}),
    ("synthesize", ["first draft", "second draft", {"note": "third"}], {}),
]


def _mock_context(operator: str, **kwargs: Any) -> OperatorContext:
    return OperatorContext(operator=operator, node_id=f"{operator}-0", model_config=MOCK, **kwargs)


async def _run(name: str, input: Any, arguments: dict[str, Any] | None = None) -> Any:
    context = _mock_context(name)
    with use_context(context):
        output = await get_operator(name).invoke(input, arguments or {})
    assert context.completions, f"{name} made no model call"
    assert all(c.is_mock and c.provider == "mock" for c in context.completions)
    return output


@pytest.mark.parametrize(("name", "input", "arguments"), LLM_CASES)
async def test_every_llm_operator_runs_on_the_mock(
    name: str, input: Any, arguments: dict[str, Any]
) -> None:
    output = await _run(name, input, arguments)
    definition = get_operator(name)
    assert definition.output_validator.is_valid(output)
    assert output != {}
    if isinstance(output, str):
        assert output.startswith("[mock]")


async def test_text_operators_echo_their_prompt_through_the_mock() -> None:
    output = await _run("transform", "hello world", {"transformation_type": "translate"})
    assert "translate" in output
    assert "hello world" in output


@pytest.mark.parametrize("text", ["great", "terrible", "meh", "a long review " * 5])
async def test_classify_returns_one_of_the_given_categories(text: str) -> None:
    categories = ["bug", "feature request", "question"]
    output = await _run("classify", text, {"categories": categories})
    assert output["category"] in categories
    assert output["reasoning"].startswith("[mock]")
    assert 0.0 <= output["confidence"] <= 1.0


async def test_classify_defaults_and_threshold() -> None:
    output = await _run("classify", "fine", {"confidence_threshold": 0.9})
    assert output["category"] in {"positive", "negative", "neutral"}
    assert output["meets_threshold"] is False
    listed = await _run("classify", "x", {"classification_schema": "urgency: low, medium, high"})
    assert listed["category"] in {"low", "medium", "high"}


async def test_classify_rejects_empty_categories() -> None:
    with pytest.raises(OperatorValidationError) as caught:
        await _run("classify", "x", {"categories": []})
    assert (caught.value.field, caught.value.rule) == ("$.categories", "minItems")
    assert str(caught.value) == "classify input: $.categories: [] should be non-empty (minItems)"


@pytest.mark.parametrize("text", ["route me", "another", "third input"])
async def test_route_returns_one_of_the_paths(text: str) -> None:
    paths = ["billing", "support", "sales"]
    output = await _run("route", text, {"available_paths": paths})
    assert output["selected_path"] in paths
    default = await _run("route", text)
    assert default["selected_path"] in {"simple", "complex"}


async def test_extract_with_fields_has_exactly_those_keys() -> None:
    output = await _run("extract", "Bob is 3", {"fields": ["name", "age"]})
    assert output == {"name": "[mock] name", "age": "[mock] age"}


async def test_compare_needs_two_items() -> None:
    with pytest.raises(OperatorValidationError) as caught:
        await _run("compare", "only one")
    assert (caught.value.direction, caught.value.field, caught.value.rule) == (
        "input",
        "$.content_b",
        "required",
    )
    output = await _run("compare", {"content_a": "x", "content_b": "y"})
    assert output["conclusion"].startswith("[mock]")


async def test_validate_strictness_is_an_enum() -> None:
    with pytest.raises(OperatorValidationError) as caught:
        await _run("validate", "x", {"strictness_level": "harsh"})
    assert (caught.value.field, caught.value.rule) == ("$.strictness_level", "enum")


async def test_expand_depth_is_bounded() -> None:
    with pytest.raises(OperatorValidationError) as caught:
        await _run("expand", "x", {"depth_level": 9})
    assert (caught.value.field, caught.value.rule) == ("$.depth_level", "maximum")


async def test_context_builds_the_request_and_records_completions() -> None:
    context = OperatorContext(
        operator="custom",
        model_config=ModelConfig(provider=ModelProvider.MOCK, system_prompt="Be terse."),
        prompt_context="The user is a child.",
    )
    request = context.build_request("hi", system="ignored", choices=("a", "b"))
    assert request.system == "Be terse.\n\nAdditional context: The user is a child."
    assert request.choices == ("a", "b")
    plain = OperatorContext(model_config=MOCK).build_request("hi", system="Operator system.")
    assert plain.system == "Operator system."
    with use_context(context):
        assert current_context() is context
        assert await call_model("hello") == context.completions[0].text
    assert current_context() is not context
    assert current_context().operator == "custom"


async def test_custom_operator_reaches_the_model_through_the_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.custom_ops import shout_and_ask

    context = _mock_context("shout_and_ask")
    with use_context(context):
        output = await get_operator("shout_and_ask").invoke("quiet words", {})
    assert output.startswith("[mock] shout_and_ask")
    assert "QUIET WORDS" in output
    assert len(context.completions) == 1
    # Called directly, outside any node: a default context (operator "custom").
    requests = _real_model(monkeypatch, "direct answer")
    assert await shout_and_ask("x") == "direct answer"
    assert [(r.operator, r.config, r.prompt, r.system) for r in requests] == [
        ("custom", ModelConfig(), "X", "Answer briefly.")
    ]


# Real-provider parsing: the registry's `complete` answers like a real model would.


def _real_model(monkeypatch: pytest.MonkeyPatch, reply: str) -> list[CompletionRequest]:
    requests: list[CompletionRequest] = []

    async def fake_complete(request: CompletionRequest) -> Completion:
        requests.append(request)
        return Completion(
            text=reply,
            provider="anthropic",
            request_model="claude-test",
            response_model="claude-test",
            usage=TokenUsage(prompt_tokens=10, completion_tokens=5),
            cost=CostInfo(),
        )

    monkeypatch.setattr(provider_registry, "complete", fake_complete)
    return requests


async def _run_real(name: str, input: Any, arguments: dict[str, Any] | None = None) -> Any:
    context = OperatorContext(
        operator=name, model_config=ModelConfig(provider=ModelProvider.ANTHROPIC)
    )
    with use_context(context):
        return await get_operator(name).invoke(input, arguments or {})


async def test_classify_parses_fenced_json_with_prose(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = 'Sure!\n```json\n{"category": "Question", "confidence": 0.8, "reasoning": "asks"}\n```'
    requests = _real_model(monkeypatch, reply)
    output = await _run_real("classify", "how?", {"categories": ["bug", "question"]})
    assert output == {"category": "question", "confidence": 0.8, "reasoning": "asks"}
    (request,) = requests
    assert request.response_format == "json"
    assert request.choices == ("bug", "question")
    assert request.operator == "classify"
    assert request.system is not None
    assert "JSON" in request.system
    assert "- bug\n- question" in request.prompt


async def test_classify_rejects_a_category_outside_the_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _real_model(monkeypatch, '{"category": "spam", "confidence": 0.9, "reasoning": "r"}')
    with pytest.raises(OperatorValidationError) as caught:
        await _run_real("classify", "x", {"categories": ["bug", "question"]})
    assert (caught.value.direction, caught.value.field, caught.value.rule) == (
        "output",
        "$.category",
        "enum",
    )


async def test_route_accepts_a_bare_path_from_a_real_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _real_model(monkeypatch, "support.")
    output = await _run_real("route", "x", {"available_paths": ["billing", "support"]})
    assert output["selected_path"] == "support"
    assert not output["reasoning"].startswith("[mock]")


@pytest.mark.parametrize("name", ["validate", "compare", "extract", "classify"])
async def test_unparseable_real_output_is_a_format_error(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    _real_model(monkeypatch, "I cannot answer that in the format you asked.")
    with pytest.raises(OperatorValidationError) as caught:
        await _run_real(name, ["a", "b"])
    assert (caught.value.direction, caught.value.rule, caught.value.operator) == (
        "output",
        "format",
        name,
    )


async def test_real_json_is_coerced_and_missing_keys_are_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _real_model(
        monkeypatch,
        '{"differences": "tone", "similarities": ["facts"], "conclusion": "A is better"}',
    )
    assert await _run_real("compare", ["a", "b"]) == {
        "differences": ["tone"],
        "similarities": ["facts"],
        "conclusion": "A is better",
    }
    _real_model(monkeypatch, '{"is_valid": "yes", "confidence": "80%"}')
    with pytest.raises(OperatorValidationError) as caught:
        await _run_real("validate", "x")
    assert (caught.value.field, caught.value.rule) == ("$.validation_reasoning", "format")
    _real_model(
        monkeypatch, '{"is_valid": false, "validation_reasoning": "wrong", "confidence": 80}'
    )
    assert await _run_real("validate", "x") == {
        "is_valid": False,
        "validation_reasoning": "wrong",
        "confidence": 0.8,
    }


async def test_real_extract_with_fields_fills_null(monkeypatch: pytest.MonkeyPatch) -> None:
    _real_model(monkeypatch, '{"name": "Ada", "born": 1815, "extra": 1}')
    output = await _run_real("extract", "text", {"fields": ["name", "born", "died"]})
    assert output == {"name": "Ada", "born": 1815, "died": None}


async def test_empty_real_text_violates_the_output_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _real_model(monkeypatch, "   ")
    with pytest.raises(OperatorValidationError) as caught:
        await _run_real("generate", "spec")
    assert (caught.value.direction, caught.value.rule) == ("output", "minLength")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Here you go:\n```json\n{"a": [1, 2]}\n```\nThanks', {"a": [1, 2]}),
        ('prefix {"a": "}"} suffix {"b": 2}', {"a": "}"}),
        ("[1, 2]", None),
        ("no json here", None),
    ],
)
def test_parse_json_object(text: str, expected: dict[str, Any] | None) -> None:
    assert _prompts.parse_json_object(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Positive", "positive"),
        ('"neutral".', "neutral"),
        ("The answer is very positive overall", "very positive"),
        ("positive or negative", None),
        ("unrelated", None),
    ],
)
def test_match_choice(text: str, expected: str | None) -> None:
    choices = ["positive", "very positive", "negative", "neutral"]
    assert _prompts.match_choice(text, choices) == expected


# Ensemble operators: exact results on fixed inputs.


async def _ensemble(name: str, input: Any, **arguments: Any) -> Any:
    with use_context(_mock_context(name)) as context:
        output = await get_operator(name).invoke(input, arguments)
    assert context.completions == []
    return output


async def test_pack_candidates() -> None:
    packed = await _ensemble("pack_candidates", ["a", {"text": "b", "score": 0.9}, 3])
    assert packed == {
        "candidates": [
            {"id": "c0", "content": "a", "score": None},
            {"id": "c1", "content": {"text": "b", "score": 0.9}, "score": 0.9},
            {"id": "c2", "content": 3, "score": None},
        ],
        "total_count": 3,
    }
    assert await _ensemble("pack_candidates", "single") == {
        "candidates": [{"id": "c0", "content": "single", "score": None}],
        "total_count": 1,
    }
    assert (await _ensemble("pack_candidates", {"results": ["x", "y"]}))["total_count"] == 2
    # Already packed: kept as is.
    assert await _ensemble("pack_candidates", packed) == packed


SCORED = [
    {"text": "low", "score": 0.2},
    {"text": "high", "score": 0.9},
    "unscored",
    {"text": "mid", "confidence": 0.6},
]


async def test_extract_winners() -> None:
    top = await _ensemble("extract_winners", SCORED, k=2)
    assert [c["id"] for c in top] == ["c1", "c3"]
    packed = await _ensemble("pack_candidates", SCORED)
    assert await _ensemble("extract_winners", packed, k=2) == top
    above = await _ensemble("extract_winners", SCORED, strategy="threshold", threshold=0.5)
    assert [c["id"] for c in above] == ["c1", "c3"]
    everything = await _ensemble("extract_winners", SCORED, k=10)
    assert [c["id"] for c in everything] == ["c1", "c3", "c0", "c2"]
    with pytest.raises(OperatorValidationError) as caught:
        await _ensemble("extract_winners", SCORED, strategy="best")
    assert caught.value.rule == "enum"


async def test_majority_on_texts() -> None:
    assert await _ensemble("majority", ["Yes", " yes", "no"]) == {
        "result": "Yes",
        "confidence": 0.666667,
        "vote_counts": {"Yes": 2, "no": 1},
        "consensus_met": True,
    }
    assert await _ensemble("majority", ["a", "b"]) == {
        "result": None,
        "confidence": 0.5,
        "vote_counts": {"a": 1, "b": 1},
        "consensus_met": False,
    }
    strict = await _ensemble("majority", ["a", "a", "b"], min_consensus=0.9)
    assert (strict["result"], strict["consensus_met"]) == (None, False)
    assert await _ensemble("majority", []) == {
        "result": None,
        "confidence": 0.0,
        "vote_counts": {},
        "consensus_met": False,
    }


async def test_majority_on_classify_outputs_and_objects() -> None:
    votes = [
        {"category": "bug", "confidence": 0.9, "reasoning": "r1"},
        {"category": "question", "confidence": 0.4, "reasoning": "r2"},
        {"category": "question", "confidence": 0.3, "reasoning": "r3"},
    ]
    simple = await _ensemble("majority", votes)
    assert (simple["result"], simple["vote_counts"]) == ("question", {"bug": 1, "question": 2})
    weighted = await _ensemble("majority", votes, strategy="weighted")
    assert weighted == {
        "result": "bug",
        "confidence": 0.5625,
        "vote_counts": {"bug": 1, "question": 2},
        "consensus_met": True,
    }
    objects = await _ensemble("majority", [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 2}])
    assert objects["result"] == {"a": 1, "b": 2}
    assert objects["vote_counts"] == {'{"a":1,"b":2}': 2, '{"a":2}': 1}


async def test_select_by_id() -> None:
    assert await _ensemble("select_by_id", ["a", "b", "c"], target_ids=["c2", "c0"]) == [
        {"id": "c0", "content": "a", "score": None},
        {"id": "c2", "content": "c", "score": None},
    ]
    assert await _ensemble("select_by_id", ["a", "b"], target_ids="c1") == [
        {"id": "c1", "content": "b", "score": None}
    ]
    with pytest.raises(OperatorValidationError) as caught:
        await _ensemble("select_by_id", ["a"])
    assert (caught.value.field, caught.value.rule) == ("$.target_ids", "required")


def test_every_operator_has_a_description_and_schemas() -> None:
    names: list[str] = [case[0] for case in LLM_CASES] + [
        "pack_candidates",
        "extract_winners",
        "majority",
        "select_by_id",
    ]
    for name in names:
        info = get_operator(name).info()
        assert info["description"], name
        assert info["input_schema"], name
        assert info["output_schema"], name
