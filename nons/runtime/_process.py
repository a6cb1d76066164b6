"""Process and socket helpers of the embedded nats-server: probe, stop by PID, read logs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from typing import TYPE_CHECKING

from nons.core.errors import ServerStartError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("LOOPBACK_HOST", "free_port", "log_tail", "probe_server", "terminate")

LOOPBACK_HOST = "127.0.0.1"
"""The only interface the embedded server listens on: it is never reachable from outside."""

_PROBE_TIMEOUT_S = 0.5
"""Bound on one readiness probe (TCP connect plus the server's INFO line)."""

_LOG_TAIL_LINES = 10
"""How many lines from each end of the server's log an error quotes."""


def free_port() -> int:
    """A port that was free on loopback an instant ago (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def probe_server(port: int, server_name: str) -> bool:
    """Whether our server (not another on that port) answers with its INFO line."""
    try:
        with socket.create_connection((LOOPBACK_HOST, port), timeout=_PROBE_TIMEOUT_S) as sock:
            data = b""
            while b"\r\n" not in data and len(data) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
    except OSError:
        return False
    line = data.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return False
    try:
        info = json.loads(line[5:])
    except ValueError:
        return False
    return isinstance(info, dict) and info.get("server_name") == server_name


def terminate(process: subprocess.Popen[bytes], timeout_s: float, *, graceful: bool) -> None:
    """End a process by its PID and reap it, each wait bounded."""
    if process.poll() is None:
        if graceful:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
                return
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(f"nats-server (pid {process.pid}) survived SIGKILL") from exc


def log_tail(path: Path, offset: int) -> str:
    """The log written since `offset`, both ends quoted when it is long."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    lines = text.strip().splitlines()
    if len(lines) > 2 * _LOG_TAIL_LINES:
        # A usage dump puts the reason first and the help after it: quote both ends.
        lines = [*lines[:_LOG_TAIL_LINES], "...", *lines[-_LOG_TAIL_LINES:]]
    return "\n".join(lines) or "(empty log)"
