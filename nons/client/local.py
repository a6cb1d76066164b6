"""The runtime `NoN.forward()` uses when the caller passes no client.

With `NONS_NATS_URL` set, forward() is a request to the deployed coordinators there.
Otherwise the first forward() starts an embedded nats-server (one per process, on a
free loopback port, stopped by PID at exit) and serves each network it is asked to
run with an in-process coordinator and actor host: the same code, over real NATS,
that `nons up` runs.

The module is the default `nons.core.executor.Runtime` (`default_executor`,
`run_batch`, `stream_results`): the one that `nons.core` imports lazily.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING

import anyio

from nons.actors.host import ActorHost, ActorSettings
from nons.client._client import Client
from nons.client.batch import run_batch, stream_results
from nons.client.wiring import wire_library
from nons.coordinator.service import Coordinator, CoordinatorSettings
from nons.runtime.connection import URL_ENV_VAR, ConnectionSettings, connect_nats
from nons.runtime.server import EmbeddedServer

if TYPE_CHECKING:
    import asyncio

    from nons.core.modes import ExecutionMode
    from nons.core.network import NetworkExecutor, NoN
    from nons.core.results import ExecutionResult
    from nons.core.types import Content

__all__ = (
    "LocalRuntime",
    "default_executor",
    "embedded_server",
    "run_batch",
    "stream_results",
)

logger = logging.getLogger("nons.runtime")

_server_lock = threading.Lock()
_server: EmbeddedServer | None = None
_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, NetworkExecutor] = (
    weakref.WeakKeyDictionary()
)


def embedded_server() -> EmbeddedServer:
    """The process-wide embedded nats-server, started on first use and stopped at exit."""
    global _server
    with _server_lock:
        if _server is None or not _server.running:
            server = EmbeddedServer()
            server.start()
            atexit.register(server.stop)
            logger.info("embedded nats-server started at %s (pid %d)", server.url, server.pid)
            _server = server
        return _server


class LocalRuntime:
    """Serves networks in this process and runs them over one NATS connection.

    Networks are served on first use; serving a new definition under a name already
    served replaces the old one (a notebook redefining a network just works).
    """

    def __init__(
        self,
        url: str,
        *,
        coordinator_settings: CoordinatorSettings | None = None,
        actor_settings: ActorSettings | None = None,
    ) -> None:
        self.url = url
        self.coordinator_settings = coordinator_settings
        self.actor_settings = actor_settings
        self.client: Client | None = None
        self._served: dict[str, tuple[str, Coordinator, ActorHost]] = {}
        self._lock = anyio.Lock()

    async def start(self) -> LocalRuntime:
        """Connect (once)."""
        if self.client is None:
            nc = await connect_nats(ConnectionSettings(url=self.url, name="nons-local"))
            self.client = Client(nc, owns_connection=True)
        return self

    async def serve(self, network: NoN) -> None:
        """Serve `network` here unless this exact definition is served already."""
        async with self._lock:
            await self.start()
            served = self._served.get(network.name)
            if served is not None and served[0] == network.fingerprint:
                return
            if served is not None:
                logger.info("network %r redefined: serving the new definition", network.name)
                await self._unserve(network.name)
            assert self.client is not None
            nc = self.client.nc
            coordinator = Coordinator(nc, [network], self.coordinator_settings or _settings())
            actors = ActorHost(nc, [network], self.actor_settings)
            await actors.__aenter__()
            await coordinator.__aenter__()
            self._served[network.name] = (network.fingerprint, coordinator, actors)

    async def run_network(
        self,
        network: NoN,
        input: Content,
        *,
        execution_id: str | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
        mode: ExecutionMode | None = None,
    ) -> ExecutionResult:
        """Serve the network if needed, then run it through its exec subject."""
        await self.serve(network)
        assert self.client is not None
        return await self.client.run_network(
            network,
            input,
            execution_id=execution_id,
            timeout_s=timeout_s,
            budget_usd=budget_usd,
            metadata=metadata,
            mode=mode,
        )

    async def _unserve(self, name: str) -> None:
        _, coordinator, actors = self._served.pop(name)
        await coordinator.stop()
        await actors.stop()

    async def aclose(self) -> None:
        """Stop serving and close the connection."""
        async with self._lock:
            for name in list(self._served):
                await self._unserve(name)
            if self.client is not None:
                await self.client.close()
                self.client = None

    async def __aenter__(self) -> LocalRuntime:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def default_executor() -> NetworkExecutor:
    """The executor of this event loop: a client of `NONS_NATS_URL`, or a `LocalRuntime`."""
    import asyncio

    loop = asyncio.get_running_loop()
    executor = _runtimes.get(loop)
    if executor is not None:
        return executor
    # The library edge: forward() without a client reads its configuration here, once,
    # and is wired as a `nons` process is (providers, limits, telemetry).
    wire_library()
    url = os.environ.get(URL_ENV_VAR, "").strip()
    if url:
        nc = await connect_nats(ConnectionSettings(url=url, name="nons-client"))
        executor = Client(nc, owns_connection=True)
    else:
        server = await anyio.to_thread.run_sync(embedded_server)
        executor = await LocalRuntime(server.url).start()
    _runtimes[loop] = executor
    return executor


def _settings() -> CoordinatorSettings:
    """Coordinator settings whose budgets price like this process's actors call."""
    from nons.client.wiring import pricing_of
    from nons.providers.registry import provider_settings

    return CoordinatorSettings(pricing=pricing_of(provider_settings()))
