"""`nons ui` in a real browser: headless Chromium against `nons up` and `nons ui` processes.

Everything is real: a nats-server, `nons up` serving a small network, `nons ui` serving
the page, executions started by `nons exec` (a client that is not the page) and from
the page's own form, and Debian's Chromium driven through chromedriver. The checks are
the ones a user makes by looking: the network graph, an execution turning completed,
a failing node's error type, untrusted markup shown as text, "not found", and the
banner when NATS goes away and comes back.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.browser import Browser, headless_browser, missing_reason
from tests.support.processes import REPO_ROOT, NonsProcess, nons_env, nons_process
from tests.support.ui_network import FAIL_WORD, NETWORK_NAME, SLOW_WORD

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from nons.runtime.server import EmbeddedServer

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))

READY_S = 30.0
"""Bound on a process's startup (interpreter, imports, connect)."""
PAGE_S = 15.0
"""Bound on the page showing what it was told."""
TARGET = "tests.support.ui_network:network"
NODES = 4
"""parrot -> [parrot, guard] -> parrot."""


def child_env() -> dict[str, str]:
    env = nons_env()
    for name in ("NONS_NATS_URL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "NONS_JAEGER_URL"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def served(tmp_path: Path, url: str, *ui_args: str) -> Iterator[tuple[NonsProcess, str]]:
    """`nons up` for the test network and `nons ui` on a free port; the page's URL."""
    with (
        nons_process(
            ["--nats-url", url, "up", TARGET], tmp_path=tmp_path, env=child_env(), name="up"
        ) as up,
        nons_process(
            ["--nats-url", url, "ui", "--port", "0", *ui_args],
            tmp_path=tmp_path,
            env=child_env(),
            name="ui",
        ) as ui,
    ):
        up.wait_for_line("nons up ready", timeout=READY_S)
        line = ui.wait_for_line(r"nons ui ready: http://", timeout=READY_S)
        match = re.search(r"(http://\S+)", line)
        assert match is not None, line
        yield ui, match.group(1)


def nons_exec(url: str, text: str) -> dict[str, Any]:
    """Run the network from another process (`nons exec --json`): its reply document."""
    done = subprocess.run(
        [sys.executable, "-m", "nons", "--nats-url", url, "exec", NETWORK_NAME, text, "--json"],
        capture_output=True,
        text=True,
        timeout=READY_S,
        env=child_env(),
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


def node_statuses(browser: Browser) -> dict[str, str]:
    found = browser.js(
        "return Object.fromEntries([...document.querySelectorAll('#execution-graph .node')]"
        ".map((n) => [n.dataset.nodeId, n.dataset.status]));"
    )
    return dict(found or {})


def test_the_page_shows_networks_and_executions_live(
    fresh_nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    url = fresh_nats_server.url
    jaeger = "http://127.0.0.1:16686"
    with (
        served(tmp_path, url, "--jaeger-url", jaeger) as (_, page),
        headless_browser(tmp_path / "profile") as browser,
    ):
        browser.open(page)
        network_nodes = f'article[data-network="{NETWORK_NAME}"] .node'
        browser.wait_for(
            lambda: browser.count(network_nodes) == NODES,
            timeout=PAGE_S,
            message="the network graph did not appear",
        )
        shown = browser.text(f'article[data-network="{NETWORK_NAME}"]') or ""
        assert "parrot" in shown
        assert "guard" in shown
        assert "1 replica" in shown

        # An execution started by another client shows up, and its nodes turn completed.
        reply = nons_exec(url, "hello from a client")
        assert reply["status"] == "completed", reply
        row = f'tr[data-execution-id="{reply["execution_id"]}"]'
        browser.wait_for(
            lambda: "completed" in (browser.text(row) or ""),
            timeout=PAGE_S,
            message="the client's execution did not show up as completed",
        )
        browser.open(f"{page}#/executions/{reply['execution_id']}")
        browser.wait_for(
            lambda: (
                len(node_statuses(browser)) == NODES
                and set(node_statuses(browser).values()) == {"completed"}
            ),
            timeout=PAGE_S,
            message="the execution's nodes did not all turn completed",
        )
        assert browser.text("#trace-id") == reply["trace_id"]
        link = browser.js("return document.getElementById('trace-link').href;")
        assert link == f"{jaeger}/trace/{reply['trace_id']}"
        assert browser.count("#waterfall .row") == 3 + NODES  # every layer and node timed

        # A running execution, watched: its node turns from running to completed live.
        with subprocess.Popen(
            [sys.executable, "-m", "nons", "--nats-url", url, "exec", NETWORK_NAME, SLOW_WORD],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),
            cwd=REPO_ROOT,
        ) as slow:
            browser.open(page)
            running_row = "#executions tbody tr[data-execution-id]"
            browser.wait_for(
                lambda: browser.js(
                    "return [...document.querySelectorAll(arguments[0])]"
                    ".some((r) => r.textContent.includes('running'));",
                    running_row,
                ),
                timeout=PAGE_S,
                message="the running execution did not show up",
            )
            browser.js(
                "[...document.querySelectorAll(arguments[0])]"
                ".find((r) => r.textContent.includes('running')).querySelector('a').click();",
                running_row,
            )
            browser.wait_for(
                lambda: node_statuses(browser).get("l1-guard") == "running",
                timeout=PAGE_S,
                message="the slow node is not shown running",
            )
            assert node_statuses(browser)["l0-parrot"] == "completed"
            browser.wait_for(
                lambda: node_statuses(browser).get("l1-guard") == "completed",
                timeout=PAGE_S,
                message="the slow node did not turn completed on the open page",
            )
            assert slow.wait(timeout=READY_S) == 0

        # A failing node shows its error type.
        failed = nons_exec(url, f"please {FAIL_WORD}")
        assert failed["status"] == "failed", failed
        browser.open(f"{page}#/executions/{failed['execution_id']}")
        browser.wait_for(
            lambda: node_statuses(browser).get("l1-guard") == "failed",
            timeout=PAGE_S,
            message="the failing node is not shown failed",
        )
        guard_box = browser.text('#execution-graph .node[data-node-id="l1-guard"]') or ""
        assert failed["error"]["type"] in guard_box
        assert failed["error"]["type"] in (browser.text("#execution-error") or "")

        # Untrusted model text with markup, run from the page's own form: shown as text.
        markup = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'
        browser.open(page)
        browser.wait_for(
            lambda: browser.js("return !document.getElementById('run-button').disabled;"),
            timeout=PAGE_S,
            message="the run form never offered the network",
        )
        browser.js(
            "document.getElementById('run-input').value = arguments[0];"
            "document.getElementById('run-button').click();",
            markup,
        )
        browser.wait_for(
            lambda: markup in (browser.text("#output") or ""),
            timeout=PAGE_S,
            message="the page's run did not show its output",
        )
        assert browser.js("return window.__pwned === undefined;")
        assert browser.count("#execution-view script, #execution-view img") == 0
        assert markup in (browser.text('.node-panel[data-node-id="l2-parrot"] .node-output') or "")
        shot = browser.screenshot(tmp_path / "execution-view.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000  # a rendered page, not an empty image

        # An id nobody knows.
        browser.open(f"{page}#/executions/no-such-execution")
        browser.wait_for(
            lambda: browser.visible("#not-found"),
            timeout=PAGE_S,
            message="an unknown execution id did not show 'not found'",
        )


def test_a_lost_nats_connection_shows_a_banner_until_it_is_back(
    fresh_nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    with (
        served(tmp_path, fresh_nats_server.url) as (ui, page),
        headless_browser(tmp_path / "profile") as browser,
    ):
        browser.open(page)
        browser.wait_for(
            lambda: (
                browser.js("return document.getElementById('nats-status').dataset.connected;")
                == "yes"
            ),
            timeout=PAGE_S,
            message="the page never showed a live connection",
        )
        assert not browser.visible("#banner")
        fresh_nats_server.kill()
        browser.wait_for(
            lambda: (
                browser.visible("#banner")
                and "NATS connection lost" in (browser.text("#banner") or "")
            ),
            timeout=PAGE_S,
            message="no banner after the nats-server died",
        )
        fresh_nats_server.restart()
        browser.wait_for(
            lambda: not browser.visible("#banner"),
            timeout=PAGE_S,
            message="the banner stayed after the nats-server came back",
        )
        assert ui.running
