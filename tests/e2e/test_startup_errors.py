"""A startup failure a user can cause ends the process with one line that says the fix."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from nons.runtime.server import EmbeddedServer
from tests.support.processes import REPO_ROOT, nons_env

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def run_nons(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nons", *args],
        capture_output=True,
        text=True,
        env=nons_env(),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The whole output, asserted to be one line on stderr and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def server_without_jetstream() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(jetstream=False) as server:
        yield server


@pytest.mark.parametrize(
    "command",
    [
        ["coordinator", "examples.quickstart:network"],
        ["up", "examples.quickstart:network"],
        ["sink", "jsonl", "{tmp}/events.jsonl"],
    ],
)
def test_no_jetstream_is_one_line_naming_it_the_url_and_the_fix(
    server_without_jetstream: EmbeddedServer, command: list[str], tmp_path: Path
) -> None:
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    line = one_line(run_nons("--nats-url", server_without_jetstream.url, *args))
    assert "JetStream is not enabled" in line
    assert server_without_jetstream.url in line
    assert "nats-server -js" in line


def test_a_port_in_use_is_one_line(server_without_jetstream: EmbeddedServer) -> None:
    line = one_line(run_nons("server", "--port", str(server_without_jetstream.port)))
    assert f"port {server_without_jetstream.port}" in line
    assert "in use" in line


def test_a_bad_target_is_one_line() -> None:
    line = one_line(run_nons("coordinator", "no_such_module_here:network"))
    assert "no module named 'no_such_module_here'" in line


def test_an_unreachable_server_is_one_line() -> None:
    line = one_line(
        run_nons("--nats-url", "nats://127.0.0.1:1", "coordinator", "examples.quickstart:network")
    )
    assert "no NATS server answers at nats://127.0.0.1:1" in line
