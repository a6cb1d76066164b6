"""`nons ui` settings and finding a local `nons up`'s embedded nats-server (a fake /proc)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from nons.core.errors import ConfigurationError
from nons.ui.locate import find_embedded_servers
from nons.ui.settings import UiSettings, is_loopback

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.com", False),
    ],
)
def test_only_this_machine_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert UiSettings(host=host).loopback is loopback


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://x", "127.0.0.1:16686", "http://"])
def test_a_jaeger_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigurationError, match="http"):
        UiSettings(jaeger_url=url)


def test_the_trace_base_has_no_trailing_slash() -> None:
    assert UiSettings(jaeger_url="http://127.0.0.1:16686/").trace_base == "http://127.0.0.1:16686"
    assert UiSettings().trace_base is None


def fake_process(proc: Path, pid: int, args: list[str], *, ppid: int, start: int) -> None:
    entry = proc / str(pid)
    entry.mkdir()
    (entry / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    fields = ["S", str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 10
    (entry / "stat").write_text(f"{pid} (x) {' '.join(fields)}\n")


def server_args(port: int, name: str = "nons-embedded-abc") -> list[str]:
    return ["/venv/bin/nats-server", "-a", "127.0.0.1", "-p", str(port), "-n", name, "-js"]


def test_a_nons_up_server_is_preferred_then_the_newest(tmp_path: Path) -> None:
    fake_process(tmp_path, 10, ["/venv/bin/python", "/venv/bin/nons", "up", "x:y"], ppid=1, start=5)
    fake_process(tmp_path, 11, ["/venv/bin/python", "-m", "pytest"], ppid=1, start=5)
    fake_process(tmp_path, 20, server_args(4001), ppid=10, start=100)
    fake_process(tmp_path, 21, server_args(4002), ppid=11, start=300)
    fake_process(tmp_path, 22, server_args(4003), ppid=11, start=200)
    fake_process(tmp_path, 23, server_args(4004, name="someone-else"), ppid=10, start=400)
    fake_process(tmp_path, 24, ["/usr/bin/nats-server", "-p", "4005"], ppid=1, start=500)
    (tmp_path / "self").mkdir()
    found = find_embedded_servers(tmp_path)
    assert [(s.pid, s.url, s.parent_is_up) for s in found] == [
        (20, "nats://127.0.0.1:4001", True),
        (21, "nats://127.0.0.1:4002", False),
        (22, "nats://127.0.0.1:4003", False),
    ]
    assert all(os.getuid() == (tmp_path / str(s.pid)).stat().st_uid for s in found)


def test_nothing_is_found_without_a_proc_table(tmp_path: Path) -> None:
    assert find_embedded_servers(tmp_path / "missing") == []
