"""Circuit breakers: closed -> open -> half-open -> closed, counting only provider trouble."""

from __future__ import annotations

import anyio
import pytest

from nons.core.errors import (
    CircuitOpenError,
    InjectedFailureError,
    OperatorValidationError,
    ProviderAuthenticationError,
    ProviderBadRequestError,
    ProviderOverloadedError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from nons.core.types import CircuitBreakerConfig, CostInfo, ModelConfig, ModelProvider, TokenUsage
from nons.providers import registry
from nons.providers.base import Completion, CompletionRequest
from nons.providers.breaker import BreakerClient, BreakerState, CircuitBreaker, counts_as_failure
from nons.providers.mock import MockBehaviour
from nons.providers.settings import ProviderSettings
from nons.resilience.settings import configure_scheduler
from tests.support.wait import wait_until

Change = tuple[str, str, BreakerState, BreakerState]


class FakeClock:
    def __init__(self) -> None:
        self.time = 50.0

    def __call__(self) -> float:
        return self.time


class ScriptedProvider:
    """Fails with the queued errors, then succeeds; can hold a call until released."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.errors: list[BaseException] = []
        self.release: anyio.Event | None = None

    @property
    def name(self) -> str:
        return "anthropic"

    def default_model(self) -> str:
        return "default-model"

    async def complete(self, request: CompletionRequest) -> Completion:
        model = request.config.model_name or self.default_model()
        self.calls.append(model)
        if self.release is not None:
            await self.release.wait()
        if self.errors:
            raise self.errors.pop(0)
        return Completion(
            text="ok",
            provider="anthropic",
            request_model=model,
            response_model=model,
            usage=TokenUsage(),
            cost=CostInfo(),
        )

    async def aclose(self) -> None:
        pass


def request(model: str | None = None) -> CompletionRequest:
    return CompletionRequest(prompt="hi", config=ModelConfig(model_name=model))


def overloaded() -> ProviderOverloadedError:
    return ProviderOverloadedError("529 overloaded", details={"provider": "anthropic"})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changes() -> list[Change]:
    return []


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def client(provider: ScriptedProvider, clock: FakeClock, changes: list[Change]) -> BreakerClient:
    def record(provider: str, model: str, old: BreakerState, new: BreakerState) -> None:
        changes.append((provider, model, old, new))

    config = CircuitBreakerConfig(failure_threshold=5, recovery_timeout_s=30)
    return BreakerClient(provider, config, clock=clock, on_change=record)


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (ProviderRateLimitedError("429"), True),
        (ProviderOverloadedError("529"), True),
        (ProviderUnavailableError("503"), True),
        (TimeoutError(), True),
        (ProviderRateLimitedError("local wait", details={"local": True}), False),
        (ProviderBadRequestError("400"), False),
        (ProviderAuthenticationError("401"), False),
        (InjectedFailureError("mock"), False),
        (
            OperatorValidationError("bad", operator="x", direction="output", field="$", rule="r"),
            False,
        ),
        (ValueError("bug"), False),
    ],
)
def test_only_retryable_provider_trouble_counts(error: BaseException, counts: bool) -> None:
    assert counts_as_failure(error) is counts


async def test_opens_after_threshold_and_fails_fast(
    client: BreakerClient, provider: ScriptedProvider, changes: list[Change], clock: FakeClock
) -> None:
    provider.errors = [overloaded() for _ in range(5)]
    for attempt in range(5):
        assert client.breaker("default-model").state is BreakerState.CLOSED, attempt
        with pytest.raises(ProviderOverloadedError):
            await client.complete(request())
    assert client.states() == {"default-model": BreakerState.OPEN}
    clock.time += 10
    with pytest.raises(CircuitOpenError) as caught:
        await client.complete(request())
    assert len(provider.calls) == 5  # the 6th call never reached the provider
    error = caught.value
    assert error.retryable
    assert error.details == {
        "provider": "anthropic",
        "model": "default-model",
        "retry_after_s": pytest.approx(20.0),
    }
    assert changes == [("anthropic", "default-model", BreakerState.CLOSED, BreakerState.OPEN)]


async def test_success_and_non_counting_errors_keep_it_closed(
    client: BreakerClient, provider: ScriptedProvider
) -> None:
    provider.errors = [overloaded() for _ in range(4)]
    for _ in range(4):
        with pytest.raises(ProviderOverloadedError):
            await client.complete(request())
    await client.complete(request())  # a success resets the count
    provider.errors = [overloaded() for _ in range(4)]
    provider.errors.insert(2, ProviderBadRequestError("400 bad request"))
    for expected in (
        (ProviderOverloadedError,) * 2 + (ProviderBadRequestError,) + (ProviderOverloadedError,) * 2
    ):
        with pytest.raises(expected):
            await client.complete(request())
    breaker = client.breaker("default-model")
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 4


async def test_half_open_lets_one_trial_through_and_closes_on_success(
    client: BreakerClient, provider: ScriptedProvider, changes: list[Change], clock: FakeClock
) -> None:
    provider.errors = [overloaded() for _ in range(5)]
    for _ in range(5):
        with pytest.raises(ProviderOverloadedError):
            await client.complete(request())
    clock.time += 30
    provider.release = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(client.complete, request())
        await wait_until(lambda: len(provider.calls) == 6, timeout=5)
        assert client.breaker("default-model").state is BreakerState.HALF_OPEN
        with pytest.raises(CircuitOpenError, match="trial"):
            await client.complete(request())  # only one trial at a time
        provider.release.set()
    assert client.breaker("default-model").state is BreakerState.CLOSED
    assert [(old, new) for _, _, old, new in changes] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert len(provider.calls) == 6


async def test_a_failed_trial_opens_it_again_for_a_full_cool_down(
    client: BreakerClient, provider: ScriptedProvider, clock: FakeClock
) -> None:
    provider.errors = [overloaded() for _ in range(6)]
    for _ in range(5):
        with pytest.raises(ProviderOverloadedError):
            await client.complete(request())
    clock.time += 31
    with pytest.raises(ProviderOverloadedError):
        await client.complete(request())  # the trial fails
    assert client.states() == {"default-model": BreakerState.OPEN}
    clock.time += 29
    with pytest.raises(CircuitOpenError):
        await client.complete(request())
    clock.time += 1
    await client.complete(request())
    assert client.states() == {"default-model": BreakerState.CLOSED}


async def test_an_inconclusive_trial_lets_another_through(
    client: BreakerClient, provider: ScriptedProvider, clock: FakeClock
) -> None:
    provider.errors = [overloaded() for _ in range(5)] + [ProviderBadRequestError("400")]
    for _ in range(5):
        with pytest.raises(ProviderOverloadedError):
            await client.complete(request())
    clock.time += 30
    with pytest.raises(ProviderBadRequestError):
        await client.complete(request())
    assert client.breaker("default-model").state is BreakerState.HALF_OPEN
    provider.release = anyio.Event()
    with anyio.move_on_after(0.05):  # a cancelled trial is inconclusive too
        await client.complete(request())
    assert client.breaker("default-model").state is BreakerState.HALF_OPEN
    provider.release = None
    await client.complete(request())
    assert client.breaker("default-model").state is BreakerState.CLOSED


async def test_results_of_calls_admitted_earlier_are_ignored(clock: FakeClock) -> None:
    breaker = CircuitBreaker("anthropic", "m", failure_threshold=1, clock=clock)
    early = breaker.admit()  # admitted while closed, still running
    failing = breaker.admit()
    breaker.record(failing, overloaded())
    breaker.record(early, None)  # a late success does not close it
    assert breaker.state is BreakerState.OPEN


async def test_breakers_are_per_model(client: BreakerClient, provider: ScriptedProvider) -> None:
    provider.errors = [overloaded() for _ in range(5)]
    for _ in range(5):
        with pytest.raises(ProviderOverloadedError):
            await client.complete(request("model-a"))
    with pytest.raises(CircuitOpenError):
        await client.complete(request("model-a"))
    completion = await client.complete(request("model-b"))
    assert completion.request_model == "model-b"
    assert client.states() == {"model-a": BreakerState.OPEN, "model-b": BreakerState.CLOSED}


async def test_a_failing_listener_does_not_break_calls(clock: FakeClock) -> None:
    def broken(provider: str, model: str, old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker("anthropic", "m", failure_threshold=1, clock=clock, on_change=broken)
    breaker.record(breaker.admit(), overloaded())
    assert breaker.state is BreakerState.OPEN


def test_config_validation() -> None:
    from nons.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="failure_threshold"):
        CircuitBreakerConfig(failure_threshold=0)
    with pytest.raises(ConfigurationError, match="recovery_timeout_s"):
        CircuitBreaker("p", "m", recovery_timeout_s=-1)


async def test_registry_clients_have_breakers_and_report_changes() -> None:
    registry.reset_providers()
    changes: list[Change] = []
    try:
        registry.configure_providers(
            ProviderSettings(),
            mock=MockBehaviour(failure_rate=1.0, fail_with="provider_overloaded"),
        )
        configure_scheduler(circuit_breaker=CircuitBreakerConfig(failure_threshold=2))
        registry.add_breaker_listener(lambda *change: changes.append(change))
        mock_request = CompletionRequest(
            prompt="hi", config=ModelConfig(provider=ModelProvider.MOCK)
        )
        for _ in range(2):
            with pytest.raises(ProviderOverloadedError):
                await registry.complete(mock_request)
        with pytest.raises(CircuitOpenError):
            await registry.complete(mock_request)
        assert changes == [("mock", "mock-1", BreakerState.CLOSED, BreakerState.OPEN)]

        configure_scheduler(circuit_breaker=CircuitBreakerConfig(enabled=False))
        with pytest.raises(ProviderOverloadedError):  # new settings, new clients
            await registry.complete(mock_request)
    finally:
        await registry.aclose_clients()
        registry.reset_providers()
