"""Node-result caches: an identical node call is answered from a store, not the model.

A call is identified by a content hash (`cache_key`) of what decides its output: the
operator and its module, the bound arguments, the prompt context, the model
configuration with its resolved provider, and the input. The network's fingerprint
and the node's id are left out, so equal nodes of different networks share results.
`cache_policy` says whether a call may be cached at all (temperature 0 or an explicit
opt-in). Two backends: `MemoryCache`, an LRU bounded in size and age, one per actor
host; and `JetStreamCache`, a JetStream key-value bucket with a TTL that every actor
pointed at the same NATS shares.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError

from nons.core.errors import ConfigurationError
from nons.core.results import NodeResult
from nons.core.types import CacheConfig, CostInfo, ModelConfig, TokenUsage

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.client import Client
    from nats.js.kv import KeyValue

    from nons.core.spec import NodeSpec

__all__ = (
    "CACHE_KEY_VERSION",
    "CacheStats",
    "JetStreamCache",
    "MemoryCache",
    "NodeCache",
    "CACHE_IO_TIMEOUT_S",
    "cache_key",
    "cache_policy",
    "lookup",
    "served_from_cache",
    "store",
)

logger = logging.getLogger("nons.actor.cache")

CACHE_KEY_VERSION = 1
"""Part of every key: bumped when what a key covers changes, so old entries miss."""

CACHE_IO_TIMEOUT_S = 2.0
"""Longest a lookup or store may take; past it the call runs (or replies) uncached."""


class CacheStats(msgspec.Struct, kw_only=True):
    """Counters of one cache, for tests, logs and `$SRV.STATS`."""

    hits: int = 0
    """Lookups answered from the cache."""
    misses: int = 0
    """Lookups that found nothing usable (absent, expired or unreadable)."""
    stores: int = 0
    """Results stored."""
    evictions: int = 0
    """Entries dropped to stay within the size bound (memory backend)."""


class NodeCache(Protocol):
    """Where successful node results are kept by key."""

    @property
    def stats(self) -> CacheStats:
        """Hit, miss and store counters."""
        ...

    async def get(self, key: str) -> NodeResult | None:
        """The result stored under `key`, unless absent or expired."""
        ...

    async def put(self, key: str, result: NodeResult) -> None:
        """Store `result` under `key` for the cache's TTL."""
        ...


class _KeyMaterial(msgspec.Struct, frozen=True, kw_only=True):
    """What a cache key hashes: everything that decides a node call's output."""

    version: int
    operator: str
    operator_module: str | None
    arguments: dict[str, Any]
    prompt_context: str
    model: ModelConfig
    provider: str
    input: Any


class _Entry(msgspec.Struct, frozen=True, kw_only=True):
    """A stored result with the wall time it was stored at (JetStream backend)."""

    stored_at: float
    result: NodeResult


_KEY_ENCODER = msgspec.json.Encoder(order="sorted")
_ENTRY_ENCODER = msgspec.json.Encoder()
_ENTRY_DECODER = msgspec.json.Decoder(_Entry)


def cache_policy(
    node_cache: bool | None, network_cache: CacheConfig | None, model: ModelConfig
) -> CacheConfig | None:
    """The cache configuration a call uses, or `None` when it must not be cached.

    Args:
        node_cache: the node's `cache` (`True` opt-in, `False` never, `None` auto).
        network_cache: the network's `NetworkConfig.cache`.
        model: the model configuration of this call (override included).
    """
    if network_cache is not None and not network_cache.enabled:
        return None
    if node_cache is True:
        return network_cache or CacheConfig()
    if node_cache is None and network_cache is not None and model.temperature == 0:
        return network_cache
    return None


def cache_key(node: NodeSpec, model: ModelConfig, provider: str, input: Any) -> str | None:
    """The SHA-256 (hex) of a node call's canonical JSON; `None` when it has no JSON form.

    Args:
        node: the node's spec (its id and fallback output do not count).
        model: the model configuration of the call.
        provider: the provider that answers it (resolved when `model.provider` is None).
        input: the call's input.
    """
    material = _KeyMaterial(
        version=CACHE_KEY_VERSION,
        operator=node.operator,
        operator_module=node.operator_module,
        arguments=node.arguments,
        prompt_context=node.prompt_context,
        model=model,
        provider=provider,
        input=input,
    )
    try:
        encoded = _KEY_ENCODER.encode(material)
    except (TypeError, msgspec.EncodeError):
        return None
    return hashlib.sha256(encoded).hexdigest()


def served_from_cache(stored: NodeResult, duration_ms: float) -> NodeResult:
    """The result of a cache hit: the stored output, nothing charged, the saving recorded."""
    return msgspec.structs.replace(
        stored,
        usage=TokenUsage(),
        cost=CostInfo(),
        cached=True,
        saved_cost_usd=stored.cost.total_cost_usd,
        duration_ms=duration_ms,
        attempts=1,
    )


class MemoryCache:
    """An in-process LRU: at most `max_entries` results, each served for `ttl_s` seconds.

    Args:
        max_entries: size bound; the least recently used entry goes first.
        ttl_s: seconds an entry may be served after it was stored.
        clock: monotonic seconds; a fake one in tests.
    """

    def __init__(
        self,
        max_entries: int = 1024,
        ttl_s: float = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        CacheConfig(max_entries=max_entries, ttl_s=ttl_s)  # validates
        self.max_entries = max_entries
        """Size bound."""
        self.ttl_s = ttl_s
        """Age bound in seconds."""
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, NodeResult]] = OrderedDict()
        self._stats = CacheStats()

    @classmethod
    def from_config(cls, config: CacheConfig) -> MemoryCache:
        """A memory cache with the bounds of `config`."""
        return cls(config.max_entries, config.ttl_s)

    @property
    def stats(self) -> CacheStats:
        """Hit, miss, store and eviction counters."""
        return self._stats

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        entry = self._entries.get(key) if isinstance(key, str) else None
        return entry is not None and entry[0] > self._clock()

    async def get(self, key: str) -> NodeResult | None:
        """The result under `key` (now the most recently used), unless absent or expired."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                del self._entries[key]
            self._stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self._stats.hits += 1
        return entry[1]

    async def put(self, key: str, result: NodeResult) -> None:
        """Store `result`, evicting the least recently used entries past the bound."""
        self._entries[key] = (self._clock() + self.ttl_s, result)
        self._entries.move_to_end(key)
        self._stats.stores += 1
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self._stats.evictions += 1


class JetStreamCache:
    """Results in a JetStream key-value bucket, shared by every actor on the same NATS.

    The bucket's own TTL (`max_age`) removes old entries; each entry also carries the
    time it was stored, so a bucket created earlier with a longer TTL still serves
    nothing older than this cache's `ttl_s`. Use `open` to get one.

    Args:
        kv: the bucket.
        ttl_s: seconds an entry may be served.
        clock: wall-clock seconds (entries are compared across processes).
    """

    def __init__(
        self, kv: KeyValue, ttl_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.kv = kv
        """The key-value bucket."""
        self.ttl_s = ttl_s
        """Age bound in seconds."""
        self._clock = clock
        self._stats = CacheStats()

    @classmethod
    async def open(cls, nc: Client, config: CacheConfig) -> JetStreamCache:
        """Bind to the bucket `config.bucket`, creating it with `config.ttl_s` when absent.

        Raises:
            ConfigurationError: JetStream is not enabled on the server, or the bucket
                cannot be created.
        """
        js = nc.jetstream()
        try:
            try:
                kv = await js.key_value(config.bucket)
            except BucketNotFoundError:
                kv = await js.create_key_value(
                    KeyValueConfig(
                        bucket=config.bucket,
                        description="NoN node-result cache",
                        ttl=config.ttl_s,
                        history=1,
                    )
                )
        except (NatsError, TimeoutError) as exc:
            raise ConfigurationError(
                f"the jetstream cache backend cannot use bucket {config.bucket!r}: "
                f"{type(exc).__name__}: {exc} (is JetStream enabled on the NATS server?)"
            ) from exc
        return cls(kv, config.ttl_s)

    @property
    def stats(self) -> CacheStats:
        """Hit, miss and store counters of this process."""
        return self._stats

    async def get(self, key: str) -> NodeResult | None:
        """The result under `key`, unless absent, older than `ttl_s` or unreadable."""
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            self._stats.misses += 1
            return None
        try:
            stored = _ENTRY_DECODER.decode(entry.value or b"")
        except (msgspec.ValidationError, msgspec.DecodeError):
            logger.warning("cache entry %s is unreadable; ignored", key)
            self._stats.misses += 1
            return None
        if self._clock() - stored.stored_at > self.ttl_s:
            self._stats.misses += 1
            return None
        self._stats.hits += 1
        return stored.result

    async def put(self, key: str, result: NodeResult) -> None:
        """Store `result` under `key`."""
        await self.kv.put(
            key, _ENTRY_ENCODER.encode(_Entry(stored_at=self._clock(), result=result))
        )
        self._stats.stores += 1


async def lookup(cache: NodeCache, key: str) -> NodeResult | None:
    """A lookup bounded by `CACHE_IO_TIMEOUT_S`; a failing or slow cache is a miss.

    The cache is an optimisation: when it fails, the node runs as if uncached.
    """
    try:
        async with asyncio.timeout(CACHE_IO_TIMEOUT_S):
            return await cache.get(key)
    except Exception as exc:  # any backend failure: log it, run the node
        logger.warning("cache lookup failed (%s: %s); running the node", type(exc).__name__, exc)
        return None


async def store(cache: NodeCache, key: str, result: NodeResult) -> None:
    """A store bounded by `CACHE_IO_TIMEOUT_S`; a failure only costs a later call a miss."""
    try:
        async with asyncio.timeout(CACHE_IO_TIMEOUT_S):
            await cache.put(key, result)
    except Exception as exc:  # any backend failure: log it, reply anyway
        logger.warning("cache store failed (%s: %s); result not cached", type(exc).__name__, exc)
