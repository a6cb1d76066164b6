"""Prompt caching: what a best-of-5 ensemble bills, and what the warm-up adds in latency.

Against the fake Messages API of `tests/support` (the real `anthropic` SDK, the fake's
cache accounting: a write for a new prefix, reads for a repeat once the writing
answer has begun), with a coordinator and actors in this process on the bench's NATS
server. Each execution gets a fresh prefix, so every layer starts cold.

Figures:
* input-token cost of the 5-wide layer, as a multiple of one uncached call of the
  same prompt, with the floor the prices allow (1.25 + 4 x 0.1 = 1.65: one write, four
  reads); the target is at most 1.3 times that floor. The same layer with prompt
  caching off is shown for comparison (5x).
* the warm-up's latency: the 5-wide layer's p50 with caching on (one call first)
  over the same layer with it off (all five at once), at `MODEL_LATENCY_S` per call;
  answered whole (the others wait for the leader's reply) and streamed (they wait for
  its first token only).
* the warm-up check's cost on a 1000-wide mock layer (it never waits there).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING

from benchmarks.report import Figure, Target, percentile, ratio
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator._warmup import plan_warmup
from nons.coordinator.service import Coordinator
from nons.core.layer import Layer
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider, NetworkConfig, TokenUsage
from nons.providers import registry
from nons.providers.pricing import CACHE_READ_MULTIPLIER, CACHE_WRITE_MULTIPLIER
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.fake_anthropic import FakeAnthropic

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from benchmarks._harness import Bench

__all__ = ("prompt_cache",)

WIDTH = 5
"""Nodes of the ensemble layer."""

PREFIX_TOKENS = 4000
"""Tokens of the shared prefix (the layer input), at the fake's four characters a token."""

MODEL = "claude-sonnet-4-5"
"""A Sonnet model (1024-token minimum), so the prefix is cached."""

MODEL_LATENCY_S = 0.2
"""How long the fake takes to answer a call (to its first event, when streamed)."""

STREAM_DELAY_S = 0.02
"""Pause between the events of a streamed answer: about 0.25 s of generation."""

_KEY = "sk-ant-bench-prompt-cache"
_SCENARIO = "prompt cache"


def _ensemble(name: str, cache: bool, stream: bool = False) -> NoN:
    model = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name=MODEL, max_tokens=64)
    return NoN.from_operators(
        [Node("generate", model, stream=stream) * WIDTH],
        NetworkConfig(prompt_cache=cache),
        name=name,
    )


def _prompt(run: int) -> str:
    head = f"Run {run} {uuid.uuid4().hex}. "
    body = "The incident review covers the failover of the primary database cluster. "
    return head + body * (PREFIX_TOKENS * 4 // len(body))


def _input_units(usage: TokenUsage) -> float:
    """Input cost in units of the input price per token."""
    return (
        usage.prompt_tokens
        + usage.cache_creation_tokens * CACHE_WRITE_MULTIPLIER
        + usage.cache_read_tokens * CACHE_READ_MULTIPLIER
    )


@contextlib.asynccontextmanager
async def _serving(url: str, nets: list[NoN]) -> AsyncIterator[tuple[Client, FakeAnthropic]]:
    with FakeAnthropic(
        api_key=_KEY, latency_s=MODEL_LATENCY_S, count_tokens=True, stream_delay_s=STREAM_DELAY_S
    ) as fake:
        registry.configure_providers(
            ProviderSettings(anthropic_api_key=_KEY, anthropic_base_url=fake.base_url)
        )
        nc = await connect_nats(ConnectionSettings(url=url, name="bench-prompt-cache"))
        try:
            async with ActorHost(nc, nets), Coordinator(nc, nets):
                client = Client(nc)
                try:
                    yield client, fake
                finally:
                    await client.close()
        finally:
            await nc.close()
            registry.reset_providers()


async def prompt_cache(bench: Bench) -> list[Figure]:
    """Cost multiple of a cached best-of-5, and the warm-up's latency ratio."""
    runs = 3 if bench.sizes.quick else 7
    nets = {
        (cache, stream): _ensemble(f"bench-pcache-{int(cache)}{int(stream)}", cache, stream)
        for cache in (True, False)
        for stream in (False, True)
    }
    times: dict[tuple[bool, bool], list[float]] = {key: [] for key in nets}
    units: dict[bool, list[float]] = {True: [], False: []}
    single: list[float] = []
    async with _serving(bench.server.url, list(nets.values())) as (client, _fake):
        for run in range(runs):
            for (cache, stream), net in nets.items():
                started = time.perf_counter()
                result = await client.execute(net.name, _prompt(run), timeout_s=30)
                times[cache, stream].append(time.perf_counter() - started)
                result.raise_for_status()
                if stream:
                    continue
                units[cache].append(_input_units(result.metadata.token_usage))
                if not cache:  # one uncached call of the same prompt: the unit of cost
                    single.append(result.layer_results[0].nodes[0].usage.prompt_tokens)
    one_call = percentile(single, 50)
    least = CACHE_WRITE_MULTIPLIER + (WIDTH - 1) * CACHE_READ_MULTIPLIER
    cached = percentile(units[True], 50) / one_call
    uncached = percentile(units[False], 50) / one_call
    warm, cold = percentile(times[True, False], 50), percentile(times[False, False], 50)
    warm_stream = percentile(times[True, True], 50)
    cold_stream = percentile(times[False, True], 50)
    check_us = _warmup_check_us()
    return [
        Figure(
            scenario=_SCENARIO,
            name=f"best-of-{WIDTH}, {PREFIX_TOKENS}-token prefix: input cost, caching on",
            value=cached,
            unit="x one call",
            floor=least,
            ratio=ratio(cached, least),
            target=Target(op="<=", bound=1.3),
            note=f"floor = {CACHE_WRITE_MULTIPLIER} + {WIDTH - 1} x {CACHE_READ_MULTIPLIER}"
            " (one write, four reads)",
        ),
        Figure(
            scenario=_SCENARIO,
            name=f"best-of-{WIDTH}: input cost, caching off",
            value=uncached,
            unit="x one call",
            note="every node pays the whole prompt",
        ),
        Figure(
            scenario=_SCENARIO,
            name=f"{WIDTH}-wide layer p50, warmed (caching on)",
            value=warm * 1000.0,
            unit="ms",
            floor=cold * 1000.0,
            ratio=ratio(warm, cold),
            note=f"floor = the same layer unwarmed (caching off); {MODEL_LATENCY_S * 1000:.0f} "
            "ms per call, answered whole: the others wait for the leader's reply",
        ),
        Figure(
            scenario=_SCENARIO,
            name=f"{WIDTH}-wide streaming layer p50, warmed (caching on)",
            value=warm_stream * 1000.0,
            unit="ms",
            floor=cold_stream * 1000.0,
            ratio=ratio(warm_stream, cold_stream),
            note=f"floor = unwarmed; {MODEL_LATENCY_S * 1000:.0f} ms to the first token, then "
            "about 250 ms of stream: the others wait only for the leader's first token",
        ),
        Figure(
            scenario=_SCENARIO,
            name="warm-up check, 1000-wide mock layer",
            value=check_us,
            unit="us",
            note="per execution, after the layer's first run (grouping is remembered)",
        ),
    ]


def _warmup_check_us() -> float:
    mock = ModelConfig(provider=ModelProvider.MOCK)
    layer = Layer(Node("generate", mock) * 1000)
    config = NetworkConfig()
    plan_warmup(layer, config, 10**6, None)  # the first run groups the nodes, once
    count = 10_000
    started = time.perf_counter()
    for _ in range(count):
        plan_warmup(layer, config, 10**6, None)
    return (time.perf_counter() - started) / count * 1e6
