"""Every runnable example in examples/ runs offline as a user runs it, and says what it shows.

An example is runnable when it has an `if __name__ == "__main__":` block; private
modules (`_*.py`) and pure operator modules (`word_tools.py`) are not. Each runs as
`python examples/X.py` with no API key and no `NONS_NATS_URL`, so on the mock provider
and its own embedded nats-server, which it must stop on exit.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.processes import REPO_ROOT, nons_env

if TYPE_CHECKING:
    from collections.abc import Mapping

EXAMPLES = REPO_ROOT / "examples"

RUN_TIMEOUT_S = 60.0
"""Bound on one example's run (they take about a second on the mock)."""

MOCK_NOTICE = "[mock provider"
"""Every offline run says plainly that the mock, not a model, answered."""

UNSET = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "NONS_NATS_URL",
    "NONS_DEFAULT_PROVIDER",
    "NONS_MOCK_LATENCY_S",
    "NONS_MOCK_FAILURE_RATE",
)
"""Variables that would take an example off the offline path (or slow it down)."""

EXPECTED: dict[str, tuple[str, ...]] = {
    "quickstart.py": ("output (completed)", "layer 2:"),
    "ensemble.py": ("consensus:",),
    "custom_operator.py": ("spec round trip ok",),
    "routing.py": ("branch: technical", "branch: creative", "branch: analytical"),
    "batch.py": ("batch: 20 inputs, 0 failed",),
    "streaming.py": ("final output (completed",),
    "caching.py": ("from the cache",),
    "model_selection.py": ("selected mock:mock-small", "selected mock:mock-large"),
    "event_driven.py": (
        "[callback] execution.started",
        "[callback] node.completed",
        "[callback] execution.completed",
        "[callback] execution.failed",
        "[stream]   execution.completed",
        "[stream]   execution.failed",
        "raised OperatorValidationError (validation_error)",
    ),
    "resilience.py": (
        "retry: ",
        "-> completed: 'We will get back to you shortly.'",
        "-> partial: 2 outputs go on",
        "circuit of flaky: closed -> open",
        "with circuit_open",
        "call 5: completed",
    ),
    "budgets.py": (
        "refused before any model call: budget_exceeded",
        "node.rerouted: l0-generate -> mock",
        "the mock is free",
    ),
    "hierarchical.py": (
        "operator network",
        "of summariser (trace",
        "belong to the parent's trace: True",
        "depth_exceeded",
    ),
    "database_sink.py": ("stopped by idle", "validation_error", "nons sink postgres"),
}
"""What each example's output must contain besides the mock notice."""


def runnable_examples() -> list[str]:
    """File names of the examples meant to be run, in name order."""
    return sorted(
        path.name
        for path in EXAMPLES.glob("*.py")
        if not path.name.startswith("_") and 'if __name__ == "__main__":' in path.read_text()
    )


def run_example(name: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=REPO_ROOT,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def offline_env() -> dict[str, str]:
    env = nons_env()
    for name in UNSET:
        env.pop(name, None)
    return env


def test_discovery_finds_the_examples_and_skips_modules() -> None:
    found = runnable_examples()
    assert set(EXPECTED) <= set(found), "an example named in EXPECTED was renamed or lost"
    assert "word_tools.py" not in found
    assert "_report.py" not in found
    assert "__init__.py" not in found


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize("name", runnable_examples())
def test_example_runs_offline(name: str) -> None:
    completed = run_example(name, offline_env())
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{name} exited {completed.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in completed.stderr, f"{name} logged an error:\n{completed.stderr}"
    assert MOCK_NOTICE in completed.stdout, f"{name} did not say it ran on the mock:\n{output}"
    missing = [text for text in EXPECTED.get(name, ()) if text not in completed.stdout]
    assert not missing, f"{name} output lacks {missing}:\n{output[-4000:]}"


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_budgets_example_with_a_key_routes_to_haiku_and_alerts() -> None:
    """The key path of budgets.py, against a local fake of the Messages API."""
    with FakeAnthropic(api_key="sk-ant-example-test") as fake:
        env = offline_env()
        env["ANTHROPIC_API_KEY"] = "sk-ant-example-test"
        env["ANTHROPIC_BASE_URL"] = fake.base_url
        completed = run_example("budgets.py", env)
        models = [request.body["model"] for request in fake.message_requests]
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    assert "refused before any model call: budget_exceeded" in completed.stdout
    assert "node.rerouted: l0-generate -> anthropic:claude-haiku-4-5" in completed.stdout
    assert "cost.alert: spent $" in completed.stdout
    assert MOCK_NOTICE not in completed.stdout
    # The refused network never called a model; routing made one call, the alert demo two.
    assert models == ["claude-haiku-4-5"] * 3
