"""Streaming model calls: text deltas as they arrive, then the final `Completion`.

A provider that can stream (the mock, Anthropic) has a `stream()` async iterator
besides `complete()`. The wrappers of the registry (rate limits, breakers, tracing)
pass it through, and `stream_completion` gives every client a stream, so that a
streaming node works on any provider: one that cannot stream yields its whole
answer as one delta.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from nons.providers.base import Completion, CompletionRequest, ModelClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("StreamingModelClient", "aclose_stream", "stream_completion")


@runtime_checkable
class StreamingModelClient(ModelClient, Protocol):
    """A `ModelClient` that can also stream its answer."""

    def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Yield text deltas as they arrive, then exactly one final `Completion`.

        Raises:
            ProviderError: as `complete`, also for a failure in the middle of the stream.
        """
        ...


async def stream_completion(
    client: ModelClient, request: CompletionRequest
) -> AsyncIterator[str | Completion]:
    """The stream of `client` when it has one; otherwise `complete()` as a single delta.

    Raises:
        ProviderError: whatever the client raises.
    """
    if isinstance(client, StreamingModelClient):
        items = client.stream(request)
        try:
            async for item in items:
                yield item
        finally:
            await aclose_stream(items)
        return
    completion = await client.complete(request)
    if completion.text:
        yield completion.text
    yield completion


async def aclose_stream(items: AsyncIterator[str | Completion]) -> None:
    """Close a stream now, in this task, whether or not it was read to the end.

    An async generator left to the garbage collector is closed in another task,
    where the span and limiter slot it holds can no longer be released properly.
    """
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()
