"""Shared fixtures: a real nats-server (our embedded-server code) and folder markers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.runtime.server import EmbeddedServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client

_TESTS = Path(__file__).resolve().parent
_MARKS_BY_FOLDER = {"integration": pytest.mark.integration, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder: tests/integration -> integration, tests/e2e -> e2e."""
    for item in items:
        try:
            folder = Path(item.path).resolve().relative_to(_TESTS).parts[0]
        except (ValueError, IndexError):
            continue
        mark = _MARKS_BY_FOLDER.get(folder)
        if mark is not None:
            item.add_marker(mark)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """nats-py runs on asyncio only: pin anyio's pytest plugin to it."""
    return "asyncio"


@pytest.fixture(scope="session")
def nats_server() -> Iterator[EmbeddedServer]:
    """One nats-server with JetStream for the session, stopped by PID at the end."""
    server = EmbeddedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedServer) -> str:
    return nats_server.url


@pytest.fixture
def fresh_nats_server() -> Iterator[EmbeddedServer]:
    """A server of the test's own, for tests that kill, restart or reconfigure it."""
    server = EmbeddedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A connected client on the session server, closed after the test."""
    client = await connect_nats(ConnectionSettings(url=nats_url, name="nons-test"))
    try:
        yield client
    finally:
        await client.close()
