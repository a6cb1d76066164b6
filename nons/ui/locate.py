"""Find the embedded nats-server a `nons up` on this machine started, so `nons ui` needs no URL.

An embedded server is a `nats-server` child named `nons-embedded-<id>`, listening on
127.0.0.1 on a free port that `nons up` prints. Rather than asking the user to copy
that URL, `nons ui` reads the process table (Linux `/proc`, this user's processes
only) for such servers, prefers one whose parent is a `nons up`, then the newest.
Elsewhere, or when none runs, it finds nothing and the caller starts its own server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nons.runtime.server import LOOPBACK_HOST

__all__ = ("LocalServer", "find_embedded_servers")

_NAME_PREFIX = "nons-embedded-"
"""The `-n` name `EmbeddedServer` gives its nats-server."""

_PROC = Path("/proc")


@dataclass(frozen=True, kw_only=True)
class LocalServer:
    """An embedded nats-server found running on this machine."""

    pid: int
    """The nats-server's process id."""
    port: int
    """Its client port on loopback."""
    started: int
    """Its start time in clock ticks since boot (larger: newer)."""
    parent_is_up: bool
    """Whether the process that started it is a `nons up`."""

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://{LOOPBACK_HOST}:{self.port}"


def find_embedded_servers(proc: Path = _PROC) -> list[LocalServer]:
    """This user's embedded servers, the best guess first (a `nons up`'s, then the newest)."""
    if not proc.is_dir():
        return []
    found = []
    uid = os.getuid()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            server = _embedded_server(entry, proc)
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if server is not None:
            found.append(server)
    return sorted(found, key=lambda server: (server.parent_is_up, server.started), reverse=True)


def _embedded_server(entry: Path, proc: Path) -> LocalServer | None:
    args = _cmdline(entry)
    if not args or Path(args[0]).name != "nats-server":
        return None
    options = dict(zip(args[1::1], args[2::1], strict=False))
    name, port, host = options.get("-n", ""), options.get("-p", ""), options.get("-a")
    if not name.startswith(_NAME_PREFIX) or not port.isdigit() or host != LOOPBACK_HOST:
        return None
    fields = _stat_fields(entry)
    parent = proc / fields[1]
    return LocalServer(
        pid=int(entry.name),
        port=int(port),
        started=int(fields[19]),
        parent_is_up=_is_nons_up(_cmdline(parent)),
    )


def _cmdline(entry: Path) -> list[str]:
    try:
        raw = (entry / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _stat_fields(entry: Path) -> list[str]:
    """`/proc/<pid>/stat` after the command name: state, ppid, ... (see proc(5))."""
    text = (entry / "stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _is_nons_up(args: list[str]) -> bool:
    for index, arg in enumerate(args):
        name = Path(arg).name
        if (name == "nons" or (arg == "nons" and index > 0 and args[index - 1] == "-m")) and (
            "up" in args[index + 1 :]
        ):
            return True
    return False
