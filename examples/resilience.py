"""Resilience: retries with backoff, fallback outputs, partial layers and circuit breakers.

Run it as `python examples/resilience.py`. The failures are injected by the offline
mock provider (`MockBehaviour(failure_rate=..., seed=...)`), so every node here runs
on the mock, with or without ANTHROPIC_API_KEY, and fails the same way on every run.

1. `ErrorPolicy.RETRY_WITH_BACKOFF`: a retryable failure (here an injected one) is
   tried again after an exponential, jittered delay; each retry is a `node.retrying`
   event and `NodeResult.attempts` counts the tries.
2. `Node(fallback_output=...)`: when every attempt failed, the node's output is the
   fallback (marked `fallback`) and the network goes on.
3. `ErrorPolicy.RETURN_PARTIAL`: a layer where enough nodes succeeded
   (`min_success_threshold`) goes on with their outputs; the execution is `partial`.
4. The docs' `CustomErrorPolicy(failure_threshold, recovery_timeout)` is a circuit
   breaker: `NetworkConfig(node_circuit_breaker=CircuitBreakerConfig(...))` keeps one
   per node in the coordinator. After `failure_threshold` retryable failures it opens
   and fails calls at once (`circuit_open`) without reaching the actor or the model;
   after `recovery_timeout_s` one trial call is let through and, if it succeeds, the
   breaker closes. Provider models have breakers of their own in the actors
   (`nons.core.scheduler.configure_scheduler(circuit_breaker=...)`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nons import ErrorPolicy, ExecutionError, LayerConfig, ModelConfig, ModelProvider, Node, NoN
from nons.core.types import CircuitBreakerConfig, NetworkConfig
from nons.observability.events import CircuitChanged, NodeRetrying
from nons.providers.mock import MockBehaviour
from nons.providers.registry import configure_providers
from nons.providers.settings import ProviderSettings

if TYPE_CHECKING:
    from nons.core.results import ExecutionResult
    from nons.observability.events import Event

MOCK = ModelConfig(provider=ModelProvider.MOCK)
"""Failure injection is a mock feature: these nodes always run on the mock."""

network = NoN.from_operators(
    [Node("generate", MOCK) * 4],
    name="resilience-retry",
    layer_config=LayerConfig(
        error_policy=ErrorPolicy.RETRY_WITH_BACKOFF, max_retries=3, retry_delay_seconds=0.05
    ),
)
"""Four parallel calls, each retried up to three times on a retryable failure."""

fallback = NoN.from_operators(
    [
        Node("classify", MOCK, categories=["bug", "billing"], fallback_output="needs_review"),
        Node("generate", MOCK, fallback_output="We will get back to you shortly."),
    ],
    name="resilience-fallback",
    layer_config=LayerConfig(error_policy=ErrorPolicy.FAIL_FAST),
)
"""Both nodes fail (failure rate 1.0 below); their fallback outputs carry the run."""

partial = NoN.from_operators(
    [Node("generate", MOCK) * 3],
    name="resilience-partial",
    layer_config=LayerConfig(error_policy=ErrorPolicy.RETURN_PARTIAL, min_success_threshold=0.5),
)
"""Three calls; two of three are enough."""

breaker = NoN.from_operators(
    [Node("generate", MOCK, node_id="flaky")],
    NetworkConfig(
        node_circuit_breaker=CircuitBreakerConfig(failure_threshold=2, recovery_timeout_s=1.0)
    ),
    name="resilience-breaker",
    layer_config=LayerConfig(error_policy=ErrorPolicy.FAIL_FAST),
)
"""One node behind a breaker that opens after two failures and half-opens after 1 s."""


def inject(failure_rate: float) -> None:
    """Make the mock fail this share of calls, from a fixed seed (a fresh sequence)."""
    configure_providers(
        ProviderSettings.from_env(os.environ), MockBehaviour(failure_rate=failure_rate, seed=1)
    )


def on_retry(event: Event) -> None:
    assert isinstance(event, NodeRetrying)
    print(
        f"  retry: {event.node_id} attempt {event.attempt} in {event.delay_s * 1000:.0f} ms "
        f"after {event.error.type}"
    )


def on_circuit(event: Event) -> None:
    assert isinstance(event, CircuitChanged)
    print(f"  circuit of {event.node_id}: {event.old_state} -> {event.new_state}")


def show_nodes(result: ExecutionResult) -> None:
    for layer in result.layer_results:
        for node in layer.nodes:
            why = f" ({node.error.type})" if node.error else ""
            print(f"  {node.node_id:<14} {node.status:<8} attempts {node.attempts}{why}")


async def retries() -> None:
    print("1. RETRY_WITH_BACKOFF, mock failing 30% of calls")
    inject(0.3)
    network.subscribe("node.retrying", on_retry)
    result = await network.forward("Write a one-line status update.")
    print(f"-> {result.status}")
    show_nodes(result)


async def fallbacks() -> None:
    print("\n2. fallback_output, mock failing every call")
    inject(1.0)
    result = await fallback.forward("I was charged twice.")
    print(f"-> {result.status}: {result.output!r}")
    show_nodes(result)


async def partial_layer() -> None:
    print("\n3. RETURN_PARTIAL (min_success_threshold=0.5), mock failing 30% of calls")
    inject(0.3)
    result = await partial.forward("Suggest a name for a cat.")
    print(f"-> {result.status}: {len(result.output)} outputs go on")
    show_nodes(result)


async def attempt(label: str) -> None:
    started = time.perf_counter()
    try:
        result = await breaker.forward(label)
    except ExecutionError as exc:
        took = (time.perf_counter() - started) * 1000
        print(f"  {label}: failed in {took:5.1f} ms with {exc.type}: {exc}")
    else:
        took = (time.perf_counter() - started) * 1000
        print(f"  {label}: {result.status} in {took:5.1f} ms")


async def circuit_breaker() -> None:
    print("\n4. circuit breaker (failure_threshold=2, recovery_timeout_s=1), mock down")
    breaker.subscribe("circuit.changed", on_circuit)
    inject(1.0)
    for number in range(1, 5):
        await attempt(f"call {number}")  # 1, 2 reach the mock; 3, 4 fail fast
    print("  the mock recovers; waiting out the recovery timeout ...")
    inject(0.0)
    await asyncio.sleep(1.1)
    await attempt("call 5")  # the half-open trial succeeds: the breaker closes
    await attempt("call 6")


async def main() -> None:
    await retries()
    await fallbacks()
    await partial_layer()
    await circuit_breaker()
    print("\n[mock provider: offline output, failures injected on purpose; not a real model]")


if __name__ == "__main__":
    asyncio.run(main())
