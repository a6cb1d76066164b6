"""Node-result caches: LRU bound, TTL on a fake clock, key stability and sensitivity, policy."""

from __future__ import annotations

import msgspec
import pytest

from nons.actors.cache import (
    MemoryCache,
    cache_key,
    cache_policy,
    lookup,
    served_from_cache,
    store,
)
from nons.core.errors import ConfigurationError
from nons.core.node import Node
from nons.core.results import NodeResult
from nons.core.spec import NodeSpec
from nons.core.types import CacheConfig, CostInfo, ModelConfig, TokenUsage


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def result(output: str, cost: float = 0.25) -> NodeResult:
    return NodeResult(
        node_id="n",
        operator="generate",
        output=output,
        usage=TokenUsage(prompt_tokens=10, completion_tokens=5),
        cost=CostInfo(input_cost_usd=cost),
        provider="anthropic",
        model="claude-haiku-4-5",
    )


SPEC = NodeSpec(
    node_id="n",
    operator="classify",
    arguments={"categories": ["a", "b"], "hint": {"x": 1, "y": 2}},
    prompt_context="be brief",
)
MODEL = ModelConfig(model_name="claude-haiku-4-5", temperature=0.0)


async def test_lru_keeps_at_most_max_entries_and_drops_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=2, ttl_s=100)
    await cache.put("a", result("A"))
    await cache.put("b", result("B"))
    assert await cache.get("a") is not None  # "a" is now the most recently used
    await cache.put("c", result("C"))
    assert len(cache) == 2
    assert await cache.get("b") is None
    hit_a, hit_c = await cache.get("a"), await cache.get("c")
    assert hit_a is not None
    assert hit_a.output == "A"
    assert hit_c is not None
    assert hit_c.output == "C"
    assert cache.stats.evictions == 1
    assert (cache.stats.hits, cache.stats.misses, cache.stats.stores) == (3, 1, 3)


async def test_entries_expire_after_ttl_on_the_fake_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=10, ttl_s=10, clock=clock)
    await cache.put("k", result("v"))
    clock.now = 9.99
    assert "k" in cache
    assert await cache.get("k") is not None
    clock.now = 10.0
    assert "k" not in cache
    assert await cache.get("k") is None
    assert len(cache) == 0  # the expired entry is dropped, not kept around
    await cache.put("k", result("fresh"))  # a new store starts a new TTL
    clock.now = 19.0
    hit = await cache.get("k")
    assert hit is not None
    assert hit.output == "fresh"


async def test_put_of_an_existing_key_replaces_it_without_growing() -> None:
    cache = MemoryCache(max_entries=2, ttl_s=100)
    await cache.put("k", result("old"))
    await cache.put("k", result("new"))
    hit = await cache.get("k")
    assert len(cache) == 1
    assert hit is not None
    assert hit.output == "new"


def test_key_is_a_stable_sha256_independent_of_key_order_and_node_id() -> None:
    key = cache_key(SPEC, MODEL, "anthropic", {"text": "hi", "n": 1})
    assert key is not None
    assert len(key) == 64
    assert int(key, 16) >= 0
    reordered = NodeSpec(
        node_id="other-id",
        operator="classify",
        arguments={"hint": {"y": 2, "x": 1}, "categories": ["a", "b"]},
        prompt_context="be brief",
        cache=True,
    )
    assert cache_key(reordered, MODEL, "anthropic", {"n": 1, "text": "hi"}) == key
    rebuilt = msgspec.json.decode(msgspec.json.encode(SPEC), type=NodeSpec)
    assert cache_key(rebuilt, MODEL, "anthropic", {"text": "hi", "n": 1}) == key


@pytest.mark.parametrize(
    ("spec", "model", "provider", "value"),
    [
        (msgspec.structs.replace(SPEC, operator="extract"), MODEL, "anthropic", "hi"),
        (msgspec.structs.replace(SPEC, operator_module="my.ops"), MODEL, "anthropic", "hi"),
        (msgspec.structs.replace(SPEC, arguments={"categories": ["a"]}), MODEL, "anthropic", "hi"),
        (msgspec.structs.replace(SPEC, prompt_context="be long"), MODEL, "anthropic", "hi"),
        (SPEC, msgspec.structs.replace(MODEL, temperature=0.5), "anthropic", "hi"),
        (SPEC, msgspec.structs.replace(MODEL, model_name="claude-sonnet-4-5"), "anthropic", "hi"),
        (
            SPEC,
            msgspec.structs.replace(MODEL, system_prompt="You are a pirate."),
            "anthropic",
            "hi",
        ),
        (SPEC, msgspec.structs.replace(MODEL, max_tokens=10), "anthropic", "hi"),
        (SPEC, MODEL, "mock", "hi"),
        (SPEC, MODEL, "anthropic", "hi!"),
        (SPEC, MODEL, "anthropic", {"text": "hi"}),
    ],
)
def test_key_changes_with_anything_that_decides_the_output(
    spec: NodeSpec, model: ModelConfig, provider: str, value: object
) -> None:
    base = cache_key(SPEC, MODEL, "anthropic", "hi")
    assert cache_key(spec, model, provider, value) != base


def test_an_input_without_json_form_has_no_key() -> None:
    assert cache_key(SPEC, MODEL, "mock", {"x": object()}) is None


def test_policy_temperature_zero_or_explicit_opt_in() -> None:
    network = CacheConfig(ttl_s=5)
    cold, warm = ModelConfig(temperature=0.0), ModelConfig(temperature=0.7)
    assert cache_policy(None, network, cold) is network
    assert cache_policy(None, network, warm) is None
    assert cache_policy(None, None, cold) is None
    assert cache_policy(True, network, warm) is network
    assert cache_policy(True, None, warm) == CacheConfig()
    assert cache_policy(False, network, cold) is None
    off = CacheConfig(enabled=False)
    assert cache_policy(True, off, cold) is None
    assert cache_policy(None, off, cold) is None


def test_a_hit_charges_nothing_and_records_the_saving() -> None:
    stored = result("answer", cost=0.125)
    served = served_from_cache(msgspec.structs.replace(stored, attempts=3), duration_ms=0.5)
    assert served.cached
    assert served.output == "answer"
    assert served.cost == CostInfo()
    assert served.usage == TokenUsage()
    assert served.saved_cost_usd == pytest.approx(0.125)
    assert (served.duration_ms, served.attempts, served.model) == (0.5, 1, "claude-haiku-4-5")
    wire = msgspec.json.decode(msgspec.json.encode(served), type=NodeResult)
    assert wire.cached
    assert wire.saved_cost_usd == pytest.approx(0.125)
    plain = msgspec.json.encode(stored)
    assert b"cached" not in plain
    assert b"saved_cost_usd" not in plain


class BrokenCache:
    @property
    def stats(self) -> object:
        return None

    async def get(self, key: str) -> NodeResult | None:
        raise OSError("backend down")

    async def put(self, key: str, result: NodeResult) -> None:
        raise OSError("backend down")


async def test_a_failing_backend_is_a_miss_and_a_store_failure_is_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = BrokenCache()
    assert await lookup(broken, "k") is None  # type: ignore[arg-type]
    await store(broken, "k", result("v"))  # type: ignore[arg-type]
    assert sum("backend down" in r.getMessage() for r in caplog.records) == 2


def test_cache_config_validates() -> None:
    assert CacheConfig().backend == "memory"
    with pytest.raises(ConfigurationError, match="ttl_s"):
        CacheConfig(ttl_s=0)
    with pytest.raises(ConfigurationError, match="max_entries"):
        CacheConfig(max_entries=0)
    with pytest.raises(ConfigurationError, match="bucket"):
        CacheConfig(bucket="has.dot")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"backend": "redis"}, CacheConfig)


def test_node_cache_and_stream_survive_spec_and_clone() -> None:
    node = Node("generate", cache=True, stream=True, node_id="g")
    spec = node.to_spec()
    assert (spec.cache, spec.stream) == (True, True)
    rebuilt = Node.from_spec(spec)
    assert (rebuilt.cache, rebuilt.stream) == (True, True)
    copies = Node("generate", cache=False) * 2
    assert [c.cache for c in copies] == [False, False]
    assert Node("generate").to_spec().cache is None
