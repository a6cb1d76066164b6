"""Routers and model selectors in the core model: ids, choices, specs and fingerprints."""

from __future__ import annotations

import msgspec
import pytest

from nons.core.errors import ConfigurationError, SpecError, UnknownRouteError
from nons.core.layer import NetworkNode
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.router import RouteChoice, Router, decision_path
from nons.core.spec import decode_spec, encode_spec
from nons.core.types import ModelConfig, ModelProvider
from nons.runtime.model_stats import (
    AdaptiveModelSelector,
    ModelStats,
    ModelStatsSnapshot,
    SelectionContext,
)


def routed(default: str | None = "technical") -> NoN:
    analysis = NoN.from_operators(["extract", "condense"], name="analysis")
    return NoN.from_operators(
        [
            Node("route", available_paths=["technical", "creative", "analytical"]),
            Router(
                {
                    "technical": Node("expand"),
                    "creative": Node("generate", model_selector="pkg.selectors:pick"),
                    "analytical": analysis,
                },
                default=default,
            ),
        ],
        name="routed",
    )


def test_branch_ids_derive_from_the_router_id() -> None:
    net = routed()
    router = net.layers[1].nodes[0]
    assert isinstance(router, Router)
    assert router.node_id == "l1-router"
    assert [member.node_id for member in router.members()] == [
        "l1-router-technical",
        "l1-router-creative",
        "l1-router-analytical",
    ]
    assert isinstance(router.branches["analytical"], NetworkNode)
    assert [node.node_id for _, node in net.nodes()] == [
        "l0-route",
        "l1-router",
        "l1-router-technical",
        "l1-router-creative",
        "l1-router-analytical",
    ]
    assert [member.name for member in net.networks()] == ["routed", "analysis"]
    assert net.get_node("l1-router-creative").operator_name == "generate"


def test_explicit_router_id_names_its_branches() -> None:
    router = Router({"a": Node("generate", node_id="ignored")}, node_id="pick")
    assert router.branches["a"].node_id == "pick-a"


def test_spec_round_trip_keeps_the_fingerprint() -> None:
    net = routed()
    spec = net.to_spec()
    router_spec = spec.layers[1].nodes[0]
    assert router_spec.operator == "router"
    assert router_spec.default_branch == "technical"
    assert router_spec.branches is not None
    assert set(router_spec.branches) == {"technical", "creative", "analytical"}
    assert router_spec.branches["creative"].model_selector == "pkg.selectors:pick"
    assert router_spec.branches["analytical"].network is not None

    again = NoN.from_spec(decode_spec(encode_spec(spec)))
    assert again.fingerprint == net.fingerprint
    assert encode_spec(again.to_spec()) == encode_spec(spec)
    rebuilt = again.layers[1].nodes[0]
    assert isinstance(rebuilt, Router)
    assert rebuilt.default == "technical"
    creative = rebuilt.branches["creative"]
    assert isinstance(creative, Node)
    assert creative.model_selector == "pkg.selectors:pick"


def test_fingerprint_depends_on_branches_and_default() -> None:
    assert routed("technical").fingerprint != routed("creative").fingerprint
    assert routed("technical").fingerprint == routed("technical").fingerprint


def test_spec_refuses_a_branch_id_that_clashes() -> None:
    spec = routed().to_spec()
    plain = msgspec.to_builtins(spec)
    plain["layers"][0]["nodes"][0]["node_id"] = "l1-router-creative"
    with pytest.raises(SpecError, match="duplicate node id 'l1-router-creative'"):
        decode_spec(plain)


def test_router_spec_without_branches_is_refused() -> None:
    document = {
        "name": "bad",
        "layers": [{"nodes": [{"node_id": "r", "operator": "router", "branches": {}}]}],
    }
    with pytest.raises(SpecError, match="no branches"):
        NoN.from_spec(decode_spec(document))


@pytest.mark.parametrize(
    ("decision", "branch", "requested", "default_used"),
    [
        ({"selected_path": "creative", "routing_confidence": 0.9}, "creative", "creative", False),
        ("analytical", "analytical", "analytical", False),
        ("  Creative ", "creative", "Creative", False),
        ([{"selected_path": "analytical"}], "analytical", "analytical", False),
        ({"choice": "creative"}, "creative", "creative", False),
        ({"selected_path": "poetry"}, "technical", "poetry", True),
        (42, "technical", None, True),
        ("", "technical", None, True),
    ],
)
def test_choose(decision: object, branch: str, requested: str | None, default_used: bool) -> None:
    router = routed().layers[1].nodes[0]
    assert isinstance(router, Router)
    assert router.choose(decision) == RouteChoice(
        branch=branch, requested=requested, default_used=default_used
    )


def test_unknown_route_without_default_is_a_typed_error() -> None:
    router = routed(default=None).layers[1].nodes[0]
    assert isinstance(router, Router)
    with pytest.raises(UnknownRouteError) as caught:
        router.choose({"selected_path": "poetry"})
    assert caught.value.type == "unknown_route"
    assert caught.value.details["route"] == "poetry"
    assert caught.value.details["branches"] == ["technical", "creative", "analytical"]
    assert "poetry" in str(caught.value)


def test_decision_path() -> None:
    assert decision_path({"branch": "x"}) == "x"
    assert decision_path(["a", "b"]) is None
    assert decision_path({"selected_path": 3}) is None


@pytest.mark.parametrize(
    ("branches", "default", "message"),
    [
        ({}, None, "at least one branch"),
        ({"a": Node("generate")}, "b", "default 'b' is not one of its branches"),
        ({"a b": Node("generate")}, None, "branch name"),
        ({"a": "generate"}, None, "must be a Node or a NoN"),
        ({"a": Router({"x": Node("generate")})}, None, "must be a Node or a NoN"),
    ],
)
def test_router_configuration_errors(
    branches: dict[str, object], default: str | None, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Router(branches, default)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["nocolon", ":fn", "mod:", "mod: fn"])
def test_model_selector_path_is_checked(path: str) -> None:
    with pytest.raises(ConfigurationError, match="module:function"):
        Node("generate", model_selector=path)


def test_model_selector_survives_clone_and_multiplication() -> None:
    copies = Node("generate", model_selector="a.b:c") * 2
    assert [copy.model_selector for copy in copies] == ["a.b:c", "a.b:c"]


def test_model_stats_keep_counts_ewma_latency_and_mean_cost() -> None:
    stats = ModelStats(smoothing=0.5)
    stats.record("mock", "m", duration_ms=100.0, cost_usd=0.02, success=True)
    stats.record("mock", "m", duration_ms=200.0, cost_usd=0.04, success=True)
    stats.record("mock", "m", duration_ms=300.0, cost_usd=0.0, success=False)
    seen = stats.snapshot()["mock:m"]
    assert (seen.calls, seen.successes, seen.failures) == (3, 2, 1)
    assert seen.success_rate == pytest.approx(2 / 3)
    assert seen.mean_latency_ms == pytest.approx(225.0)  # 100 -> 150 -> 225
    assert seen.mean_cost_usd == pytest.approx(0.03)
    stats.reset()
    assert stats.snapshot() == {}


def _context(text: str, budget: float | None, **stats: ModelStatsSnapshot) -> SelectionContext:
    return SelectionContext(
        network="n",
        node_id="x",
        operator="generate",
        input=text,
        remaining_budget_usd=budget,
        stats=stats,
        default_model=None,
    )


def _tiers() -> AdaptiveModelSelector:
    def mock(name: str) -> ModelConfig:
        return ModelConfig(provider=ModelProvider.MOCK, model_name=name)

    return AdaptiveModelSelector(
        high=mock("big"), medium=mock("mid"), low=mock("small"), medium_chars=10, high_chars=100
    )


@pytest.mark.parametrize(
    ("text", "budget", "model"),
    [
        ("short", None, "small"),
        ("x" * 50, None, "mid"),
        ("x" * 500, None, "big"),
        ("x" * 500, 1.0, "big"),
        ("x" * 500, 0.001, "small"),
    ],
)
def test_adaptive_selector_tiers(text: str, budget: float | None, model: str) -> None:
    chosen = _tiers()(_context(text, budget))
    assert chosen.model_name == model


def test_adaptive_selector_skips_an_unreliable_model() -> None:
    failing = ModelStatsSnapshot(
        key="mock:mid", provider="mock", model="mid", calls=10, successes=5
    )
    fine = ModelStatsSnapshot(
        key="mock:small", provider="mock", model="small", calls=10, successes=10
    )
    chosen = _tiers()(_context("x" * 50, None, **{"mock:mid": failing, "mock:small": fine}))
    assert chosen.model_name == "small"
    few = ModelStatsSnapshot(key="mock:mid", provider="mock", model="mid", calls=2, successes=0)
    assert _tiers()(_context("x" * 50, None, **{"mock:mid": few})).model_name == "mid"
