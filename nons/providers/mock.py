"""The offline `mock` provider: deterministic answers with no network and no key.

It lets a network run anywhere (examples, tests, benchmarks) behind the same
`ModelClient` protocol as the real providers, and it can inject latency and
failures so that retries, timeouts and circuit breakers are exercised offline.
Its answers say plainly that no model wrote them.

It also keeps a prompt cache as Anthropic's works, so offline runs show what caching
saves: a request whose system prompt and prompt together reach the minimum cacheable
length (`nons.providers.pricing.is_cacheable`) reports them as `cache_creation_tokens` the
first time and as `cache_read_tokens` on a repeat within five minutes, unless the
request says `prompt_cache=False`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from typing import TYPE_CHECKING

import anyio
import msgspec

from nons.core.errors import ConfigurationError, ExecutionError, error_class_for
from nons.core.types import CostInfo, TokenUsage
from nons.providers.base import Completion, CompletionRequest
from nons.providers.pricing import CACHE_TTL_S, is_cacheable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

__all__ = (
    "MOCK_FAILURE_RATE_VAR",
    "MOCK_LATENCY_VAR",
    "MOCK_MARKER",
    "MOCK_MODEL",
    "MockBehaviour",
    "MockClient",
)

MOCK_MARKER = "[mock]"
"""Prefix of every free-text mock answer, so nobody mistakes it for a model's."""

MOCK_MODEL = "mock-1"
"""The model id the mock reports as having answered."""

MOCK_LATENCY_VAR = "NONS_MOCK_LATENCY_S"
"""Environment variable setting `MockBehaviour.latency_s`."""

MOCK_FAILURE_RATE_VAR = "NONS_MOCK_FAILURE_RATE"
"""Environment variable setting `MockBehaviour.failure_rate`."""

_CHARS_PER_TOKEN = 4
"""Rough size of a token, for estimated usage."""

_EXCERPT_CHARS = 80
"""How much of the prompt a text answer echoes."""

_MAX_CACHED_PREFIXES = 4096
"""Entries the mock's prompt cache holds before expired ones are dropped."""


class MockBehaviour(msgspec.Struct, frozen=True, kw_only=True):
    """How the mock misbehaves: fixed latency and injected failures."""

    latency_s: float = 0.0
    """Seconds every call waits before answering (or failing)."""
    failure_rate: float = 0.0
    """Share of calls that fail, 0 to 1; drawn from a generator seeded with `seed`."""
    fail_with: str = "injected_failure"
    """Wire `error.type` of the injected failure (`rate_limited`, `provider_overloaded`...)."""
    seed: int = 0
    """Seed of the failure draws, so a run with the same calls fails the same way."""

    def __post_init__(self) -> None:
        if self.latency_s < 0 or not math.isfinite(self.latency_s):
            raise ConfigurationError("MockBehaviour.latency_s must be a finite number >= 0")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ConfigurationError("MockBehaviour.failure_rate must be in [0, 1]")
        error_class = error_class_for(self.fail_with)
        if error_class.__init__ is not ExecutionError.__init__ or (
            error_class is ExecutionError and self.fail_with != ExecutionError.type
        ):
            raise ConfigurationError(
                f"MockBehaviour.fail_with {self.fail_with!r} is not an injectable error type"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MockBehaviour:
        """Read `NONS_MOCK_LATENCY_S` and `NONS_MOCK_FAILURE_RATE` (unset or empty: 0).

        Raises:
            ConfigurationError: a variable is not a number in range (the message names
                the variable, never its value).
        """
        return cls(
            latency_s=_float_var(environ, MOCK_LATENCY_VAR, low=0.0, high=math.inf),
            failure_rate=_float_var(environ, MOCK_FAILURE_RATE_VAR, low=0.0, high=1.0),
        )


class MockClient:
    """Deterministic offline answers behind the `ModelClient` protocol.

    The answer depends only on `(operator, prompt, choices)` through a SHA-256 digest:

    * `choices` non-empty and `response_format == "text"`: the text is exactly one of
      the choices (no marker), so `classify` and `route` work unchanged.
    * `response_format == "json"`: the text is a JSON object
      `{"mock": true, "summary": "[mock] ...", "operator": ...}` plus
      `"choice"` and `"choices"` when choices were given.
    * otherwise: free text starting with `[mock]`, naming the operator and a digest,
      then an excerpt of the prompt.

    Usage is estimated (about four characters per token), cost is zero, `is_mock` is
    true and the response model is `mock-1`. `MockBehaviour` adds latency and
    injected failures.
    """

    def __init__(self, behaviour: MockBehaviour | None = None) -> None:
        self._behaviour = behaviour or MockBehaviour()
        self._random = random.Random(self._behaviour.seed)
        self._calls = 0
        self._prompt_cache: dict[str, float] = {}
        """Digest of each cached prefix, to its expiry (monotonic seconds)."""

    @property
    def name(self) -> str:
        """Always `mock`."""
        return "mock"

    @property
    def behaviour(self) -> MockBehaviour:
        """The latency and failure settings of this client."""
        return self._behaviour

    def default_model(self) -> str:
        """Always `mock-1`."""
        return MOCK_MODEL

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer after the configured latency, or fail as configured.

        Raises:
            ExecutionError: the `fail_with` error (an `InjectedFailureError` by
                default) for the share of calls set by `failure_rate`.
        """
        self._calls += 1
        call_number = self._calls
        fails = self._behaviour.failure_rate > 0 and (
            self._random.random() < self._behaviour.failure_rate
        )
        if self._behaviour.latency_s > 0:
            await anyio.sleep(self._behaviour.latency_s)
        if fails:
            error_class = error_class_for(self._behaviour.fail_with)
            raise error_class(
                f"mock provider injected a failure of type {self._behaviour.fail_with} "
                f"(call {call_number}, failure_rate={self._behaviour.failure_rate})",
                details={"provider": "mock", "injected": True, "call": call_number},
            )
        return self._cache_accounted(request, _answer(request))

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Yield the answer word by word, then the final `Completion`.

        Raises:
            ExecutionError: as `complete`.
        """
        completion = await self.complete(request)
        for piece in _pieces(completion.text):
            yield piece
        yield completion

    async def aclose(self) -> None:
        """Nothing to release."""

    def _cache_accounted(self, request: CompletionRequest, completion: Completion) -> Completion:
        """`completion` with its prompt billed as a cache write or read, when it is cacheable."""
        system = request.config.system_prompt or request.system or ""
        model = request.config.model_name or MOCK_MODEL
        if not request.prompt_cache or not is_cacheable(len(system) + len(request.prompt), model):
            return completion
        key = hashlib.sha256(json.dumps([system, request.prompt]).encode()).hexdigest()
        now = time.monotonic()
        hit = self._prompt_cache.get(key, 0.0) > now
        if len(self._prompt_cache) > _MAX_CACHED_PREFIXES:
            self._prompt_cache = {k: t for k, t in self._prompt_cache.items() if t > now}
        self._prompt_cache[key] = now + CACHE_TTL_S
        prefix = completion.usage.prompt_tokens
        usage = TokenUsage(
            completion_tokens=completion.usage.completion_tokens,
            cache_read_tokens=prefix if hit else 0,
            cache_creation_tokens=0 if hit else prefix,
        )
        return msgspec.structs.replace(completion, usage=usage)



def _answer(request: CompletionRequest) -> Completion:
    digest = _digest(request)
    if request.response_format == "json":
        text = _json_text(request, digest)
    elif request.choices:
        text = _choose(request.choices, digest)
    else:
        excerpt = " ".join(request.prompt.split())[:_EXCERPT_CHARS]
        text = f"{MOCK_MARKER} {request.operator} #{digest[:8]}: {excerpt}"
    system = request.config.system_prompt or request.system or ""
    prompt_tokens = _estimate_tokens(system) + _estimate_tokens(request.prompt)
    completion_tokens = min(_estimate_tokens(text), request.config.max_tokens)
    return Completion(
        text=text,
        provider="mock",
        request_model=request.config.model_name or MOCK_MODEL,
        response_model=MOCK_MODEL,
        usage=TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        cost=CostInfo(),
        finish_reason="end_turn",
        is_mock=True,
        response_id=f"mock-{digest[:24]}",
    )


def _digest(request: CompletionRequest) -> str:
    key = json.dumps([request.operator, request.prompt, list(request.choices)])
    return hashlib.sha256(key.encode()).hexdigest()


def _choose(choices: tuple[str, ...], digest: str) -> str:
    return choices[int(digest, 16) % len(choices)]


def _json_text(request: CompletionRequest, digest: str) -> str:
    excerpt = " ".join(request.prompt.split())[:_EXCERPT_CHARS]
    body: dict[str, object] = {
        "mock": True,
        "operator": request.operator,
        "summary": f"{MOCK_MARKER} {request.operator} #{digest[:8]}: {excerpt}",
    }
    if request.choices:
        body["choice"] = _choose(request.choices, digest)
        body["choices"] = list(request.choices)
    return json.dumps(body)


def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / _CHARS_PER_TOKEN)) if text else 0


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == len(words) - 1 else word + " " for i, word in enumerate(words)]


def _float_var(environ: Mapping[str, str], name: str, *, low: float, high: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        upper = "" if math.isinf(high) else f" and <= {high}"
        raise ConfigurationError(f"{name} must be >= {low}{upper}")
    return value
