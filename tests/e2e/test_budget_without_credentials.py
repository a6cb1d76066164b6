"""A coordinator holds no API key, yet prices an actor's Anthropic calls: budgets hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from nons.actors.host import ActorHost
from nons.cli._loading import load_targets
from nons.client import Client
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.processes import nons_env, nons_process

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from nats.aio.client import Client as Nats

API_KEY = "sk-ant-test-budget-0000"


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as server:
        yield server


async def test_a_keyless_coordinator_refuses_an_over_budget_anthropic_execution(
    nats_url: str, nc: Nats, fake: FakeAnthropic, tmp_path: Path
) -> None:
    env = {
        key: value
        for key, value in nons_env().items()
        if key not in ("ANTHROPIC_API_KEY", "NONS_DEFAULT_PROVIDER")
    }
    assert "ANTHROPIC_API_KEY" not in env
    # The actor is the only process with the key: nodes that name no provider run there
    # on Anthropic (the fake Messages API).
    registry.configure_providers(
        ProviderSettings(
            anthropic_api_key=API_KEY,
            anthropic_base_url=fake.base_url,
            default_provider=ModelProvider.ANTHROPIC,
            max_retries=0,
        )
    )
    (network,) = load_targets(["examples.quickstart:network"])
    args = ["--nats-url", nats_url, "coordinator", "examples.quickstart:network"]
    try:
        with nons_process(args, tmp_path=tmp_path, env=env, name="coordinator") as coordinator:
            coordinator.wait_for_line("nons coordinator ready", timeout=30)
            async with ActorHost(nc, [network]):
                result = await Client(nc).execute(network.name, "my app crashes", budget_usd=1e-6)
    finally:
        await registry.aclose_clients()
        registry.reset_providers()
    assert result.error is not None
    assert result.error.type == "budget_exceeded", result.error
    assert result.error.details["worst_case_usd"] > 1e-6
    assert fake.message_requests == []  # refused before any model call was paid for
