"""The one door from the pure model to a runtime: protocols, and one lazy import.

`nons.core` describes networks and must not load NATS or OpenTelemetry, yet
`NoN.forward()` has to run somewhere. The way anyio finds its backend, core names
what it needs as protocols and resolves the default runtime by a single
`import_module` here, the only place in `nons.core` that names a runtime module
(`tests/unit/test_architecture.py` checks that). Embedders and tests can install
another runtime with `set_runtime()`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, cast

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterable, Iterable

    from nons.core.modes import ExecutionMode
    from nons.core.results import ExecutionResult, IndexedResult
    from nons.core.types import Content

__all__ = (
    "DEFAULT_RUNTIME_MODULE",
    "BatchInput",
    "NetworkExecutor",
    "RunRequest",
    "Runtime",
    "get_runtime",
    "set_runtime",
)

DEFAULT_RUNTIME_MODULE = "nons.client.local"
"""The module that implements `Runtime` when nobody installed another."""


class NetworkExecutor(Protocol):
    """Something that runs a network: a NATS client, or the embedded local runtime.

    `network` is a `NoN`, typed `Any` here because `nons.core.network` imports this
    module (the other way round would be an import cycle).
    """

    async def run_network(
        self,
        network: Any,
        input: Content,
        *,
        execution_id: str | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
        mode: ExecutionMode | None = None,
    ) -> ExecutionResult:
        """Run one execution of `network` and return its result (failed ones too)."""
        ...


class RunRequest(Protocol):
    """A batch item that carries its own request fields (`ExecRequest` is one)."""

    @property
    def input(self) -> Any:
        """The execution's input."""
        ...

    @property
    def execution_id(self) -> str | None:
        """Its execution id, if the caller chose one."""
        ...

    @property
    def timeout_s(self) -> float | None:
        """Its time limit."""
        ...

    @property
    def budget_usd(self) -> float | None:
        """Its spending limit."""
        ...

    @property
    def metadata(self) -> dict[str, str] | None:
        """Its labels."""
        ...


BatchInput: TypeAlias = "Content | ExecutionResult | RunRequest"
"""One item of a batch: an input, a result (run on its output), or a whole request.

A request item carries its own execution id, timeout, budget and metadata, which
take precedence over the batch-wide ones.
"""


class Runtime(Protocol):
    """What `NoN.forward()`, `forward_batch()` and `stream()` need of a runtime."""

    async def default_executor(self) -> NetworkExecutor:
        """The executor used when the caller passes none (the embedded runtime)."""
        ...

    async def run_batch(
        self,
        executor: NetworkExecutor,
        network: Any,
        inputs: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: int,
        timeout_s: float | None,
        budget_usd: float | None,
        metadata: dict[str, str] | None,
        raise_on_failure: bool,
        mode: ExecutionMode | None = None,
    ) -> list[IndexedResult]:
        """Run `network` once per input; results in input order."""
        ...

    def stream_results(
        self,
        executor: NetworkExecutor,
        network: Any,
        inputs: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: int,
        timeout_s: float | None,
        budget_usd: float | None,
        metadata: dict[str, str] | None,
        mode: ExecutionMode | None = None,
    ) -> AsyncGenerator[IndexedResult, None]:
        """Run `network` once per input; yield results as they complete."""
        ...


_installed: Runtime | None = None


def get_runtime() -> Runtime:
    """The installed runtime, else the default one (imported on first use)."""
    if _installed is not None:
        return _installed
    # The one runtime import of nons.core: at call time, so that importing core stays pure.
    return cast("Runtime", importlib.import_module(DEFAULT_RUNTIME_MODULE))


def set_runtime(runtime: Runtime | None) -> None:
    """Install `runtime` for this process (`None` restores the default)."""
    global _installed
    _installed = runtime
