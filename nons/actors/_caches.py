"""The node-result caches of one actor host: which cache and key a call uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.actors.cache import JetStreamCache, MemoryCache, NodeCache, cache_key, cache_policy
from nons.core.types import CacheConfig, ModelConfig
from nons.providers.registry import default_provider

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nats.aio.client import Client

    from nons.core.network import NoN
    from nons.core.node import Node
    from nons.core.spec import NodeSpec
    from nons.runtime.messages import NodeCall

__all__ = ("HostCaches",)

_DEFAULT_MODEL = ModelConfig()


class HostCaches:
    """One cache per cache configuration (or one given cache for all of them).

    Args:
        override: used for every cached call instead of the configured backends.
    """

    def __init__(self, override: NodeCache | None = None) -> None:
        self._override = override
        self._caches: dict[CacheConfig, NodeCache] = {}

    async def open(self, nc: Client, networks: Iterable[NoN]) -> None:
        """Bind the JetStream buckets of the networks that cache there, before serving.

        Raises:
            ConfigurationError: a bucket cannot be used (no JetStream on the server).
        """
        if self._override is not None:
            return
        for network in networks:
            config = network.network_config.cache
            if (
                config is not None
                and config.enabled
                and config.backend == "jetstream"
                and config not in self._caches
            ):
                self._caches[config] = await JetStreamCache.open(nc, config)

    def cache_for(self, config: CacheConfig) -> NodeCache:
        """The cache of calls under `config` (a memory cache is made on first use)."""
        if self._override is not None:
            return self._override
        cache = self._caches.get(config)
        if cache is None:
            cache = self._caches[config] = MemoryCache.from_config(config)
        return cache

    def plan(
        self, node: Node, spec: NodeSpec, network: NoN, call: NodeCall
    ) -> tuple[NodeCache, str] | None:
        """The cache and key of a call, or `None` when it is not to be cached."""
        model = call.model or node.model_config or _DEFAULT_MODEL
        config = cache_policy(node.cache, network.network_config.cache, model)
        if config is None:
            return None
        provider = str(model.provider or default_provider())
        key = cache_key(spec, model, provider, call.input)
        if key is None:
            return None
        return self.cache_for(config), key
