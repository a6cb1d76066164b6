"""`nons ui` from the command line: it finds a local `nons up` by itself, says where it
serves, refuses a port in use with one clear line, and stops cleanly on SIGINT.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import urllib.request
from typing import TYPE_CHECKING

from tests.support.processes import REPO_ROOT, nons_env, nons_process

if TYPE_CHECKING:
    from pathlib import Path

READY_S = 30.0
TARGET = "tests.support.ui_network:network"


def child_env() -> dict[str, str]:
    env = nons_env()
    for name in ("NONS_NATS_URL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "NONS_JAEGER_URL"):
        env.pop(name, None)
    return env


def test_with_no_url_it_attaches_to_the_local_nons_up(tmp_path: Path) -> None:
    with nons_process(["up", TARGET], tmp_path=tmp_path, env=child_env(), name="up") as up:
        up.wait_for_line("nons up ready", timeout=READY_S)
        served = re.search(r"nats:\s+(nats://\S+) \(embedded nats-server, pid (\d+)\)", up.output())
        assert served is not None, up.output()
        with nons_process(
            ["ui", "--port", "0", "--jaeger-url", "http://127.0.0.1:16686"],
            tmp_path=tmp_path,
            env=child_env(),
            name="ui",
        ) as ui:
            line = ui.wait_for_line(r"nons ui ready: http://127\.0\.0\.1:\d+/", timeout=READY_S)
            output = ui.output()
            assert f"{served.group(1)} (embedded nats-server of pid {served.group(2)}" in output
            assert "traces:   http://127.0.0.1:16686/trace/<trace id>" in output
            page = re.search(r"(http://\S+)", line)
            assert page is not None
            with urllib.request.urlopen(f"{page.group(1)}api/state", timeout=10) as response:
                assert response.status == 200
                assert b'"jaeger_url":"http://127.0.0.1:16686"' in response.read()
            ui.process.send_signal(signal.SIGINT)
            assert ui.process.wait(timeout=15) == 0
            assert "nons ui: stopped" in ui.output()


def test_a_port_in_use_is_one_clear_error(tmp_path: Path, nats_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "nons", "--nats-url", nats_url, "ui", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=READY_S,
            env=child_env(),
            cwd=REPO_ROOT,
            check=False,
        )
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "Traceback" not in done.stderr
