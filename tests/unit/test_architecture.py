"""Project-wide rules: dependencies point one way, and the public API is pinned."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nons
from tests.support.import_graph import cycles, edges, module_strings

ALLOWED: dict[str, set[str]] = {
    "nons": {"core", "operators", "client", "cli"},
    "core": {"operators"},
    "operators": {"core", "providers"},
    "resilience": {"core"},
    "providers": {"core", "resilience", "observability"},
    "observability": {"core", "providers"},
    "runtime": {"core", "observability", "resilience"},
    "coordinator": {"core", "resilience", "runtime", "observability", "providers"},
    "actors": {"core", "operators", "providers", "resilience", "runtime", "observability"},
    "client": {
        "core",
        "resilience",
        "runtime",
        "observability",
        "coordinator",
        "actors",
        "providers",
    },
    "sinks": {"core", "runtime", "observability"},
    "ui": {"core", "runtime", "observability", "client"},
    "cli": {
        "nons",
        "core",
        "operators",
        "resilience",
        "providers",
        "observability",
        "runtime",
        "coordinator",
        "actors",
        "client",
        "sinks",
        "ui",
    },
}
"""Package -> the packages it may import (the arrows of the README's Layout section).

`core <-> operators` is the one package pair that goes both ways (core.node finds
operators; operators use core's errors and types); no module cycle comes of it.
"""

NARROW_EDGES: dict[tuple[str, str], set[str]] = {
    ("coordinator", "providers"): {"nons.providers.pricing"},
    ("client", "coordinator"): {"nons.client.local", "nons.client.wiring"},
    ("client", "actors"): {"nons.client.local"},
    ("client", "providers"): {"nons.client.local", "nons.client.wiring"},
    ("nons", "cli"): {"nons.__main__"},
}
"""Package edges that only some modules may use: (from, to) -> those importers, or for
`coordinator -> providers` the only importable target (a pure price table: a
coordinator holds no provider credentials)."""

CHOKE_POINT = ("nons.core.executor", "nons.client.local")
"""Core's one way to a runtime: a lazy `import_module`, like anyio finding its backend."""

SHIMS = {
    "nons.observability.events",
    "nons.runtime.batch",
    "nons.runtime.budget",
    "nons.runtime.client",
    "nons.runtime.coordinator",
    "nons.runtime.loading",
    "nons.runtime.local",
    "nons.runtime.model_stats",
    "nons.runtime.policies",
    "nons.core.scheduler",
}
"""Old import paths kept as re-exports for users; nothing in the package imports them."""


def package_of(module: str) -> str:
    """`nons.core.node` -> `core`; the CLI modules -> `cli`; the top level -> `nons`."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "nons"
    if parts[1] == "cli" or parts[1].startswith("_cli_"):
        return "cli"
    return parts[1]


def test_core_reaches_a_runtime_only_through_its_choke_point() -> None:
    graph = edges()
    outer = {"runtime", "client", "coordinator", "actors", "providers", "observability"}
    outer |= {"cli", "sinks"}
    leaks = sorted(
        (module, target)
        for module, targets in graph.items()
        if package_of(module) == "core"
        for target in targets
        if package_of(target) in outer and (module, target) != CHOKE_POINT
    )
    assert leaks == []
    assert module_strings(CHOKE_POINT[0]) == [CHOKE_POINT[1]]


def test_no_import_cycles_among_modules() -> None:
    graph = edges()
    graph[CHOKE_POINT[0]].discard(CHOKE_POINT[1])
    assert cycles(graph) == []


def test_packages_import_only_along_the_allowed_arrows() -> None:
    wrong = []
    for module, targets in edges().items():
        source = package_of(module)
        for target in targets:
            into = package_of(target)
            if into == source or module in SHIMS or (module, target) == CHOKE_POINT:
                continue
            narrow = NARROW_EDGES.get((source, into))
            if into not in ALLOWED[source]:
                wrong.append(f"{module} -> {target}")
            elif narrow is not None and module not in narrow and target not in narrow:
                wrong.append(f"{module} -> {target} (only {sorted(narrow)})")
    assert wrong == []


def test_nothing_in_the_package_imports_a_shim() -> None:
    users = sorted(
        f"{module} -> {target}"
        for module, targets in edges().items()
        for target in targets & SHIMS
        if module not in SHIMS
    )
    assert users == []


@pytest.mark.parametrize(
    "source",
    [
        "import nons.runtime.local",
        "from nons.runtime import local",
        "def f():\n    import nons.runtime.local",
        "import typing\nif typing.TYPE_CHECKING:\n    from nons.runtime.local import X",
        "import importlib\nimportlib.import_module('nons.runtime.local')",
        "MODULE = 'nons.runtime.local'",
    ],
)
def test_the_import_scanner_sees_every_kind_of_import(source: str, tmp_path: object) -> None:
    import ast

    from tests.support import import_graph

    found = {
        name for name, _exact in import_graph._imported(ast.parse(source), "nons.core.x", False)
    }
    assert "nons.runtime.local" in found or "nons.runtime.local.X" in found


def test_core_imports_no_transport_sdk_or_telemetry() -> None:
    code = (
        "import sys; import nons.core.network, nons.core.types, nons.core.spec; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('nats', 'anthropic', 'opentelemetry', 'openai')]; print(','.join(sorted(bad)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


def test_top_level_exports_are_pinned() -> None:
    assert set(nons.__all__) == {
        "ConfigurationError",
        "ErrorPolicy",
        "ExecutionError",
        "ExecutionResult",
        "Layer",
        "LayerConfig",
        "LayerResult",
        "ModelConfig",
        "ModelProvider",
        "NetworkConfig",
        "NoN",
        "Node",
        "NodeResult",
        "NonsError",
        "RetryableError",
        "Router",
        "__version__",
        "connect",
        "get_operator",
        "list_operators",
        "operator",
    }
    for name in nons.__all__:
        assert hasattr(nons, name), name


def test_documented_import_paths_exist() -> None:
    from nons.core.layer import Layer  # noqa: F401
    from nons.core.network import NoN  # noqa: F401
    from nons.core.node import Node  # noqa: F401
    from nons.core.types import (  # noqa: F401
        CostInfo,
        ErrorPolicy,
        LayerConfig,
        ModelConfig,
        ModelProvider,
        NetworkConfig,
        NonsError,
        TokenUsage,
    )
    from nons.operators.registry import get_operator, list_operators, operator  # noqa: F401

    assert {
        "transform",
        "generate",
        "classify",
        "extract",
        "condense",
        "expand",
        "compare",
        "validate",
        "route",
        "synthesize",
        "pack_candidates",
        "extract_winners",
        "majority",
        "select_by_id",
    } <= set(list_operators())


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("nons.core.scheduler", "configure_scheduler"),
        ("nons.core.network", "NetworkExecutor"),
        ("nons.observability.events", "NodeCompleted"),
        ("nons.runtime.model_stats", "adaptive_selector"),
        ("nons.runtime.client", "Client"),
        ("nons.runtime.coordinator", "Coordinator"),
        ("nons.runtime.local", "LocalRuntime"),
        ("nons.runtime.batch", "IndexedResult"),
        ("nons.runtime.budget", "worst_case_cost"),
        ("nons.runtime.policies", "should_retry"),
        ("nons.runtime.loading", "load_targets"),
        ("nons.providers.breaker", "CircuitBreaker"),
    ],
)
def test_old_import_paths_still_work(path: str, name: str) -> None:
    import importlib

    module = importlib.import_module(path)
    assert name in module.__all__
    assert getattr(module, name) is not None
