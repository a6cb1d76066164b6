"""Per-provider rate limits: rpm, rps, tpm and concurrency, bounded by the call's deadline."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from nons.core.errors import ProviderOverloadedError, ProviderRateLimitedError
from nons.core.types import BackoffStrategy, CostInfo, ModelConfig, RateLimitConfig, TokenUsage
from nons.providers.base import Completion, CompletionRequest
from nons.providers.limits import RateLimitedClient, billed_tokens, estimate_tokens
from tests.support.wait import wait_until

BIG = 10_000_000


class FakeClock:
    """Time that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


class StuckClock(FakeClock):
    """A clock whose sleeps never end (until cancelled)."""

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.sleep_forever()


class FakeProvider:
    """A provider that reports chosen usage, fails on cue, or holds calls until released."""

    def __init__(self, used_tokens: int = 10) -> None:
        self.used_tokens = used_tokens
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.failures: list[Exception] = []
        self.release: anyio.Event | None = None

    @property
    def name(self) -> str:
        return "anthropic"

    def default_model(self) -> str:
        return "fake-model"

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.release is not None:
                await self.release.wait()
            if self.failures:
                raise self.failures.pop(0)
        finally:
            self.in_flight -= 1
        return Completion(
            text="ok",
            provider="anthropic",
            request_model="fake-model",
            response_model="fake-model",
            usage=TokenUsage(prompt_tokens=self.used_tokens),
            cost=CostInfo(),
        )

    async def aclose(self) -> None:
        pass


def request(prompt: str = "x" * 40, max_tokens: int = 90) -> CompletionRequest:
    return CompletionRequest(prompt=prompt, config=ModelConfig(max_tokens=max_tokens))


def limited(provider: FakeProvider, clock: FakeClock, **limits: object) -> RateLimitedClient:
    config = RateLimitConfig(
        **{"requests_per_minute": BIG, "tokens_per_minute": BIG, **limits}  # type: ignore[arg-type]
    )
    return RateLimitedClient(provider, config, clock=clock)


def test_token_estimate_and_billed_tokens() -> None:
    assert estimate_tokens(request("x" * 40, 90)) == 100
    with_system = CompletionRequest(prompt="abcd", system="s" * 9, config=ModelConfig(max_tokens=1))
    assert estimate_tokens(with_system) == 5  # ceil(13 / 4) + 1
    usage = TokenUsage(
        prompt_tokens=5, completion_tokens=7, cache_read_tokens=100, cache_creation_tokens=3
    )
    assert billed_tokens(usage) == 15


async def test_requests_per_minute_spaces_calls() -> None:
    clock, provider = FakeClock(), FakeProvider()
    client = limited(provider, clock, requests_per_minute=2)
    for _ in range(3):
        await client.complete(request())
    assert provider.calls == 3
    assert clock.sleeps == [pytest.approx(30.0)]  # one request refills in 60 / 2 s


async def test_requests_per_second_is_a_second_limit() -> None:
    clock, provider = FakeClock(), FakeProvider()
    client = limited(provider, clock, requests_per_second=1)
    await client.complete(request())
    await client.complete(request())
    assert clock.sleeps == [pytest.approx(1.0)]


async def test_waiting_callers_queue_in_arrival_order() -> None:
    clock, provider = StuckClock(), FakeProvider()
    client = limited(provider, clock, requests_per_minute=1, max_wait_seconds=600)
    await client.complete(request())
    async with anyio.create_task_group() as group:
        group.start_soon(client.complete, request())
        await wait_until(lambda: len(clock.sleeps) == 1, timeout=5)
        group.start_soon(client.complete, request())
        await wait_until(lambda: len(clock.sleeps) == 2, timeout=5)
        group.cancel_scope.cancel()
    # Each caller reserved its request before sleeping: the second waits behind the first.
    assert clock.sleeps == [pytest.approx(60.0), pytest.approx(120.0)]
    assert provider.calls == 1


async def test_tokens_per_minute_uses_the_estimate_then_the_real_usage() -> None:
    clock, provider = FakeClock(), FakeProvider(used_tokens=20)
    client = limited(provider, clock, tokens_per_minute=600)  # 10 tokens a second
    await client.complete(request("x" * 40, max_tokens=90))  # estimate 100, used 20
    assert client.limiter.available("tokens_per_minute") == pytest.approx(580)
    await client.complete(request("", max_tokens=600))  # needs the full 600
    assert clock.sleeps == [pytest.approx(2.0)]  # (600 - 580) / 10


async def test_a_failed_call_gives_its_tokens_back() -> None:
    clock, provider = FakeClock(), FakeProvider()
    provider.failures.append(ProviderOverloadedError("overloaded"))
    client = limited(provider, clock, tokens_per_minute=600)
    with pytest.raises(ProviderOverloadedError):
        await client.complete(request())
    assert client.limiter.available("tokens_per_minute") == pytest.approx(600)


async def test_a_wait_past_the_deadline_fails_at_once_and_reserves_nothing() -> None:
    clock, provider = FakeClock(), FakeProvider()
    client = limited(provider, clock, requests_per_minute=1)
    await client.complete(request())
    with anyio.fail_after(5), pytest.raises(ProviderRateLimitedError) as caught:
        await client.complete(request())
    error = caught.value
    assert error.retryable
    assert error.details["local"] is True
    assert error.details["limit"] == "requests_per_minute"
    assert error.details["provider"] == "anthropic"
    assert error.details["model"] == "fake-model"
    assert error.details["retry_after_s"] == pytest.approx(60.0)
    assert "requests_per_minute=1" in error.message
    assert provider.calls == 1
    assert clock.sleeps == []
    assert client.limiter.available("requests_per_minute") == pytest.approx(0.0)


async def test_max_wait_bounds_a_call_without_deadline() -> None:
    clock, provider = FakeClock(), FakeProvider(used_tokens=60)
    client = limited(provider, clock, tokens_per_minute=60, max_wait_seconds=10)
    await client.complete(request("", max_tokens=60))
    with pytest.raises(ProviderRateLimitedError, match="tokens_per_minute"):
        await client.complete(request("", max_tokens=60))  # needs 60 s
    assert provider.calls == 1
    assert clock.sleeps == []


async def test_a_cancelled_wait_gives_its_reservation_back() -> None:
    clock, provider = StuckClock(), FakeProvider()
    client = limited(provider, clock, requests_per_minute=1)
    await client.complete(request())
    async with anyio.create_task_group() as group:
        group.start_soon(client.complete, request())
        await wait_until(lambda: clock.sleeps, timeout=5)  # reserved, now waiting
        assert client.limiter.available("requests_per_minute") == pytest.approx(-1.0)
        group.cancel_scope.cancel()
    assert clock.sleeps == [pytest.approx(60.0)]
    assert provider.calls == 1
    assert client.limiter.available("requests_per_minute") == pytest.approx(0.0)
    assert client.limiter.in_flight == 0


async def test_concurrent_calls_are_bounded() -> None:
    clock, provider = FakeClock(), FakeProvider()
    provider.release = anyio.Event()
    client = limited(provider, clock, max_concurrent=2, concurrent_requests=50)
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(client.complete, request())
        await wait_until(
            lambda: provider.in_flight == 2 and client.limiter.waiting_for_slot == 1, timeout=5
        )
        assert provider.calls == 2
        provider.release.set()
    assert provider.calls == 3
    assert provider.max_in_flight == 2
    assert client.limiter.in_flight == 0


async def test_a_slot_that_does_not_free_up_in_time_is_rate_limited() -> None:
    clock, provider = FakeClock(), FakeProvider()
    provider.release = anyio.Event()
    client = limited(provider, clock, concurrent_requests=1, max_wait_seconds=0.05)
    async with anyio.create_task_group() as group:
        group.start_soon(client.complete, request())
        await wait_until(lambda: provider.in_flight == 1, timeout=5)
        with pytest.raises(ProviderRateLimitedError) as caught:
            await client.complete(request())
        provider.release.set()
    assert caught.value.details["limit"] == "concurrent_requests"
    assert caught.value.details["local"] is True
    assert provider.calls == 1


@pytest.mark.parametrize(
    ("strategy", "pauses"),
    [
        (BackoffStrategy.EXPONENTIAL, [1.0, 2.0, 4.0]),
        (BackoffStrategy.LINEAR, [1.0, 2.0, 3.0]),
        (BackoffStrategy.FIXED, [1.0, 1.0, 1.0]),
    ],
)
async def test_provider_429_pauses_the_provider(
    strategy: BackoffStrategy, pauses: list[float]
) -> None:
    clock, provider = FakeClock(), FakeProvider()
    client = limited(provider, clock, backoff_strategy=strategy, backoff_max_delay=3.5)
    for _ in range(3):
        provider.failures.append(ProviderRateLimitedError("429 from the provider"))
        with pytest.raises(ProviderRateLimitedError):
            await client.complete(request())
    await client.complete(request())  # waits out the last pause, then succeeds
    assert clock.sleeps == [pytest.approx(min(p, 3.5)) for p in pauses]
    await client.complete(request())  # the success reset the backoff
    assert len(clock.sleeps) == 3


def test_config_alias_and_validation() -> None:
    assert RateLimitConfig(concurrent_requests=3).concurrency_limit == 3
    assert RateLimitConfig(concurrent_requests=3, max_concurrent=7).concurrency_limit == 7
    from nons.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="requests_per_minute"):
        RateLimitConfig(requests_per_minute=0)
    with pytest.raises(ConfigurationError, match="backoff_multiplier"):
        RateLimitConfig(backoff_multiplier=0.5)
