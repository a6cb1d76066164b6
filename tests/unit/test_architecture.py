"""Project-wide rules: dependencies point one way, and the public API is pinned."""

from __future__ import annotations

import subprocess
import sys

import nons


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
