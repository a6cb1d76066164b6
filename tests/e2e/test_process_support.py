"""The subprocess helpers the e2e tests rely on: output waits and stop by PID."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.processes import REPO_ROOT, nons_env, python_process

if TYPE_CHECKING:
    from pathlib import Path

_SERVE = """
import signal, sys, time
print("ready", flush=True)
print("to stderr", file=sys.stderr, flush=True)
if sys.argv[1] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
for _ in range(600):
    time.sleep(0.1)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_wait_for_line_then_stop_with_sigterm(tmp_path: Path) -> None:
    with python_process(["-c", _SERVE, "normal"], tmp_path=tmp_path) as process:
        assert process.wait_for_line(r"^ready$", timeout=10) == "ready"
        assert process.wait_for_line("to stderr", timeout=10) == "to stderr"
        pid = process.pid
        assert process.running
    assert not _alive(pid)
    assert process.process.returncode == -signal.SIGTERM
    assert (tmp_path / "python.stdout").read_text() == "ready\n"


def test_stop_falls_back_to_sigkill(tmp_path: Path) -> None:
    with python_process(
        ["-c", _SERVE, "ignore-term"], tmp_path=tmp_path, stop_timeout=0.5
    ) as process:
        process.wait_for_line("ignoring SIGTERM", timeout=10)
    assert process.process.returncode == -signal.SIGKILL


async def test_async_wait_fails_fast_when_the_process_exits(tmp_path: Path) -> None:
    with python_process(["-c", "print('bye')"], tmp_path=tmp_path) as process:
        with pytest.raises(AssertionError, match="exited with code 0") as info:
            await process.wait_for_line_async("never printed", timeout=10)
        assert "bye" in str(info.value)


def test_wait_for_line_times_out_with_output(tmp_path: Path) -> None:
    with python_process(["-c", _SERVE, "normal"], tmp_path=tmp_path) as process:
        with pytest.raises(AssertionError, match="no line matching") as info:
            process.wait_for_line("never printed", timeout=0.3)
        assert "ready" in str(info.value)


def test_child_env_makes_the_checkout_importable() -> None:
    env = nons_env({"NONS_EXTRA": "1"})
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO_ROOT)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["NONS_EXTRA"] == "1"
    assert sys.executable
