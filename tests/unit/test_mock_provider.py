"""The offline mock provider: deterministic, marked, and able to misbehave on purpose."""

from __future__ import annotations

import json
import time

import pytest

from nons.core.errors import (
    ConfigurationError,
    InjectedFailureError,
    ProviderOverloadedError,
    ProviderRateLimitedError,
)
from nons.core.types import CostInfo, ModelConfig
from nons.providers.base import Completion, CompletionRequest, ModelClient
from nons.providers.mock import MOCK_MARKER, MockBehaviour, MockClient


def _request(
    prompt: str = "Summarise the ticket.", *, operator: str = "generate", **fields: object
) -> CompletionRequest:
    return CompletionRequest(
        prompt=prompt,
        operator=operator,
        config=ModelConfig(),
        **fields,  # type: ignore[arg-type]
    )


async def test_text_is_marked_deterministic_and_free() -> None:
    client = MockClient()
    first = await client.complete(_request())
    again = await MockClient().complete(_request())
    other = await client.complete(_request("Another prompt entirely."))

    assert first.text.startswith(MOCK_MARKER)
    assert "generate" in first.text
    assert "Summarise the ticket." in first.text
    assert first == again
    assert other.text != first.text
    assert first.is_mock
    assert first.provider == "mock"
    assert first.response_model == "mock-1"
    assert first.request_model == "mock-1"
    assert first.cost == CostInfo()
    assert first.finish_reason == "end_turn"


async def test_operator_changes_the_answer() -> None:
    client = MockClient()
    generated = await client.complete(_request(operator="generate"))
    condensed = await client.complete(_request(operator="condense"))
    assert generated.text != condensed.text
    assert "condense" in condensed.text


async def test_usage_is_estimated_from_lengths() -> None:
    prompt = "x" * 400
    completion = await MockClient().complete(_request(prompt, system="s" * 40))
    assert completion.usage.prompt_tokens == 110  # (40 + 400) / 4
    assert completion.usage.completion_tokens == pytest.approx(len(completion.text) / 4, abs=1)
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_choices_give_exactly_one_choice_deterministically() -> None:
    client = MockClient()
    choices = ("billing", "bug", "feature")
    picked = [
        (await client.complete(_request(f"ticket {i}", operator="classify", choices=choices))).text
        for i in range(30)
    ]
    assert set(picked) <= set(choices)
    assert len(set(picked)) > 1  # the digest spreads answers over the choices
    repeat = await client.complete(_request("ticket 0", operator="classify", choices=choices))
    assert repeat.text == picked[0]


async def test_json_format_gives_a_json_object() -> None:
    completion = await MockClient().complete(_request(response_format="json"))
    body = json.loads(completion.text)
    assert body["mock"] is True
    assert body["operator"] == "generate"
    assert body["summary"].startswith(MOCK_MARKER)
    assert "choice" not in body


async def test_json_format_with_choices_echoes_them() -> None:
    choices = ("yes", "no")
    completion = await MockClient().complete(
        _request(response_format="json", operator="validate", choices=choices)
    )
    body = json.loads(completion.text)
    assert body["choice"] in choices
    assert body["choices"] == ["yes", "no"]


async def test_latency_is_awaited() -> None:
    client = MockClient(MockBehaviour(latency_s=0.05))
    started = time.monotonic()
    await client.complete(_request())
    assert time.monotonic() - started >= 0.05


async def test_failure_rate_one_always_fails() -> None:
    client = MockClient(MockBehaviour(failure_rate=1.0))
    for _ in range(3):
        with pytest.raises(InjectedFailureError) as caught:
            await client.complete(_request())
        assert caught.value.retryable
        assert caught.value.details["injected"] is True


async def test_fail_with_picks_the_wire_error() -> None:
    limited = MockClient(MockBehaviour(failure_rate=1.0, fail_with="rate_limited"))
    with pytest.raises(ProviderRateLimitedError):
        await limited.complete(_request())
    overloaded = MockClient(MockBehaviour(failure_rate=1.0, fail_with="provider_overloaded"))
    with pytest.raises(ProviderOverloadedError):
        await overloaded.complete(_request())


async def _outcomes(client: MockClient, calls: int) -> list[bool]:
    outcomes = []
    for i in range(calls):
        try:
            await client.complete(_request(f"call {i}"))
        except InjectedFailureError:
            outcomes.append(False)
        else:
            outcomes.append(True)
    return outcomes


async def test_partial_failure_rate_is_seeded_and_reproducible() -> None:
    behaviour = MockBehaviour(failure_rate=0.5, seed=7)
    first = await _outcomes(MockClient(behaviour), 40)
    second = await _outcomes(MockClient(behaviour), 40)
    assert first == second
    assert 5 < first.count(False) < 35


async def test_stream_yields_pieces_then_the_completion() -> None:
    items = [item async for item in MockClient().stream(_request())]
    final = items[-1]
    assert isinstance(final, Completion)
    pieces = [item for item in items[:-1] if isinstance(item, str)]
    assert len(pieces) == len(items) - 1 > 1
    assert "".join(pieces) == final.text


def test_satisfies_the_protocol() -> None:
    client = MockClient()
    assert isinstance(client, ModelClient)
    assert client.name == "mock"
    assert client.default_model() == "mock-1"


@pytest.mark.parametrize(
    "fields",
    [
        {"failure_rate": 1.5},
        {"failure_rate": -0.1},
        {"latency_s": -1.0},
        {"fail_with": "no_such_error"},
        {"fail_with": "validation_error"},  # needs operator/field arguments
    ],
)
def test_invalid_behaviour_is_a_configuration_error(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        MockBehaviour(**fields)  # type: ignore[arg-type]


def test_behaviour_from_env() -> None:
    behaviour = MockBehaviour.from_env(
        {"NONS_MOCK_LATENCY_S": "0.25", "NONS_MOCK_FAILURE_RATE": " 0.1 "}
    )
    assert behaviour == MockBehaviour(latency_s=0.25, failure_rate=0.1)
    assert MockBehaviour.from_env({}) == MockBehaviour()
    assert MockBehaviour.from_env({"NONS_MOCK_LATENCY_S": ""}) == MockBehaviour()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NONS_MOCK_LATENCY_S", "soon-ish"),
        ("NONS_MOCK_LATENCY_S", "-3"),
        ("NONS_MOCK_FAILURE_RATE", "1.7"),
        ("NONS_MOCK_FAILURE_RATE", "nan"),
    ],
)
def test_bad_env_names_the_variable_not_the_value(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MockBehaviour.from_env({name: value})
    assert name in str(caught.value)
    assert value not in str(caught.value)
