"""Prompt-cache warm-up: one call of a layer writes the shared prefix, the rest read it.

When two or more nodes of a layer would send Anthropic the same cacheable prompt
prefix (same operator, bound arguments, prompt context and model, and a layer input
long enough to pass the model's minimum), sending them all at once would make every
one of them pay a cache write: the API only serves an entry once the response that
wrote it has begun. So one of them, the leader, goes first, and the others wait until
its first attempt has answered, or has streamed its first `node.delta` when it
streams (the cache is written by then); if the leader fails, they go anyway.

The cost where this does not apply is one lookup per layer: which nodes could share a
prefix is worked out once per layer object and remembered, so a layer with no such
group (a mock layer, a one-node layer) pays nothing per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from nons.core.names import event_subject
from nons.core.node import Node
from nons.core.types import ModelProvider
from nons.providers.pricing import CHARS_PER_TOKEN, min_cacheable_tokens

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.msg import Msg

    from nons.coordinator.budget import PricingDefaults
    from nons.core.layer import Layer
    from nons.core.types import NetworkConfig
    from nons.runtime.bus import Bus

__all__ = ("Warmup", "plan_warmup", "released_by_deltas")

_DELTA_EVENT = "node.delta"
"""The event a streaming leader's first text delta arrives as."""


class _DeltaNode(msgspec.Struct):
    node_id: str


_DELTA_DECODER = msgspec.json.Decoder(_DeltaNode)


@dataclass(frozen=True, slots=True)
class _Group:
    """Slots of a layer whose nodes send the same prompt, and what their prefix needs."""

    slots: tuple[int, ...]
    node_ids: tuple[str, ...]
    fixed_chars: int
    """Characters of the prefix that do not come from the layer input."""
    min_chars: int
    """The model's minimum cacheable length, in characters by the estimate."""
    streams: bool


@dataclass(slots=True)
class Warmup:
    """The leaders and followers of one layer run."""

    followers: dict[int, asyncio.Event] = field(default_factory=dict)
    """Each waiting slot, to the event its leader sets."""
    leaders: dict[str, asyncio.Event] = field(default_factory=dict)
    """Each leader's node id, to the event it sets once it has written the cache."""
    streaming: frozenset[str] = frozenset()
    """Leaders whose first `node.delta` releases their followers."""

    def release(self, node_id: str) -> None:
        """Let the followers of `node_id` go, if it leads any."""
        event = self.leaders.get(node_id)
        if event is not None:
            event.set()

    def release_all(self) -> None:
        """Let every follower go (the layer is over, or the leaders have all answered)."""
        for event in self.leaders.values():
            event.set()


_GROUPS: weakref.WeakKeyDictionary[Layer, tuple[_Group, ...]] = weakref.WeakKeyDictionary()
"""The prefix-sharing groups of each layer, computed on its first run."""


def plan_warmup(
    layer: Layer, config: NetworkConfig, input_chars: int, pricing: PricingDefaults | None
) -> Warmup | None:
    """The warm-up of a layer whose input is `input_chars` long, or `None` when none helps.

    Nodes that name no provider count as Anthropic when `pricing` (the deployment's
    defaults) says the default provider is Anthropic; without `pricing` only nodes
    that name Anthropic do.
    """
    if not config.prompt_cache or len(layer.nodes) < 2:
        return None
    groups = _GROUPS.get(layer)
    if groups is None:
        groups = _groups(layer, pricing)
        _GROUPS[layer] = groups
    if not groups:
        return None
    warmup = Warmup()
    streaming: set[str] = set()
    for group in groups:
        if group.fixed_chars + input_chars < group.min_chars:
            continue
        event = asyncio.Event()
        leader = group.node_ids[0]
        warmup.leaders[leader] = event
        for slot in group.slots[1:]:
            warmup.followers[slot] = event
        if group.streams:
            streaming.add(leader)
    if not warmup.leaders:
        return None
    warmup.streaming = frozenset(streaming)
    return warmup


@contextlib.asynccontextmanager
async def released_by_deltas(
    bus: Bus, network: str, execution_id: str, warmup: Warmup
) -> AsyncIterator[None]:
    """Release a streaming leader's followers at its first `node.delta`, while inside.

    The first streamed token means the API has begun the response, and so written
    the cache; waiting for the whole reply would only add the generation time.
    """
    pending = set(warmup.streaming)

    async def on_delta(msg: Msg) -> None:
        try:
            node_id = _DELTA_DECODER.decode(msg.data).node_id
        except msgspec.DecodeError:
            return
        if node_id in pending:
            pending.discard(node_id)
            warmup.release(node_id)

    subscription = await bus.nc.subscribe(
        event_subject(network, execution_id, _DELTA_EVENT), cb=on_delta
    )
    try:
        yield
    finally:
        warmup.release_all()
        await subscription.unsubscribe()


def _groups(layer: Layer, pricing: PricingDefaults | None) -> tuple[_Group, ...]:
    default_provider = pricing.provider if pricing is not None else None
    members: dict[bytes, list[tuple[int, Node]]] = {}
    for slot, node in enumerate(layer.nodes):
        if not isinstance(node, Node) or not node.prompt_cache or node.model_selector:
            continue
        provider = (node.model_config.provider if node.model_config else None) or default_provider
        if provider is not ModelProvider.ANTHROPIC:
            continue
        try:
            key = msgspec.json.encode(
                [node.operator_name, node.arguments, node.additional_prompt_context]
                + [node.model_config]
            )
        except (TypeError, msgspec.EncodeError):
            continue  # arguments that are not JSON cannot be compared: no warm-up
        members.setdefault(key, []).append((slot, node))
    groups: list[_Group] = []
    for nodes in members.values():
        if len(nodes) < 2:
            continue
        first = nodes[0][1]
        model = first.model_config.model_name if first.model_config else None
        if model is None:
            model = pricing.anthropic_model if pricing is not None else "claude-haiku-4-5"
        system = first.model_config.system_prompt if first.model_config else None
        groups.append(
            _Group(
                slots=tuple(slot for slot, _ in nodes),
                node_ids=tuple(node.node_id for _, node in nodes),
                fixed_chars=len(first.additional_prompt_context) + len(system or ""),
                min_chars=min_cacheable_tokens(model) * CHARS_PER_TOKEN,
                streams=first.stream,
            )
        )
    return tuple(groups)
