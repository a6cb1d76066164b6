"""The NoN model: nodes, layers, networks, ids, specs and results (no sockets)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import msgspec
import pytest

from nons.core.errors import ConfigurationError, InvalidNameError, SpecError, UnknownOperatorError
from nons.core.layer import Layer, NetworkNode
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.results import ErrorInfo, ExecutionMetadata, ExecutionResult, LayerResult, NodeResult
from nons.core.spec import decode_spec, load_spec, spec_fingerprint
from nons.core.types import (
    CostInfo,
    ErrorPolicy,
    LayerConfig,
    ModelConfig,
    ModelProvider,
    NodeTimeoutError,
    OperatorValidationError,
    TokenUsage,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_node_multiplication_gives_distinct_deterministic_ids() -> None:
    copies = Node("generate") * 3
    assert [node.node_id for node in copies] == ["generate-0", "generate-1", "generate-2"]
    assert [node.node_id for node in 3 * Node("generate")] == [n.node_id for n in copies]
    with pytest.raises(ConfigurationError):
        Node("generate") * 0


def test_network_node_ids_depend_only_on_position() -> None:
    def build() -> NoN:
        return NoN.from_operators(
            ["transform", Node("generate") * 3, ["classify", "classify"], "synthesize"],
            name="triage",
        )

    first, second = build(), build()
    ids = [node.node_id for _, node in first.nodes()]
    assert ids == [
        "l0-transform",
        "l1-generate-0",
        "l1-generate-1",
        "l1-generate-2",
        "l2-classify-0",
        "l2-classify-1",
        "l3-synthesize",
    ]
    assert ids == [node.node_id for _, node in second.nodes()]
    assert first.fingerprint == second.fingerprint


def test_explicit_node_ids_are_kept_and_duplicates_refused() -> None:
    net = NoN.from_operators([Node("generate", node_id="writer")], name="one")
    assert net.get_node("writer").operator_name == "generate"
    with pytest.raises(SpecError, match="duplicate node id"):
        NoN.from_operators(
            [Node("generate", node_id="same"), Node("condense", node_id="same")], name="dup"
        )


@pytest.mark.parametrize("name", ["has.dot", "has space", "star*", ">", "", "x" * 129])
def test_network_name_must_be_a_subject_token(name: str) -> None:
    with pytest.raises(InvalidNameError, match="NATS subject token"):
        NoN.from_operators(["generate"], name=name)


def test_anonymous_network_name_is_derived_from_content() -> None:
    a = NoN.from_operators(["generate"])
    b = NoN.from_operators(["generate"])
    c = NoN.from_operators(["condense"])
    assert a.name == b.name
    assert a.name.startswith("non-")
    assert a.name != c.name
    assert a.network_id == a.name


def test_unknown_operator_is_a_configuration_error_listing_known_ones() -> None:
    with pytest.raises(UnknownOperatorError) as caught:
        Node("genrate")
    assert "generate" in str(caught.value)


def test_node_rejects_arguments_the_operator_does_not_take() -> None:
    with pytest.raises(ConfigurationError, match="no argument"):
        Node("condense", colour="blue")
    node = Node("classify", categories=["bug", "question"])
    assert node.arguments == {"categories": ["bug", "question"]}


def test_from_operators_rejects_other_types_and_nested_lists() -> None:
    with pytest.raises(ConfigurationError):
        NoN.from_operators([42])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="nested"):
        NoN.from_operators([["generate", ["condense"]]])
    with pytest.raises(ConfigurationError):
        NoN([])
    with pytest.raises(ConfigurationError):
        Layer([])


def test_sub_network_is_a_network_node_and_travels_in_the_spec() -> None:
    child = NoN.from_operators(["condense"], name="child")
    parent = NoN.from_operators(["transform", child, "generate"], name="parent")
    member = parent.layers[1].nodes[0]
    assert isinstance(member, NetworkNode)
    assert member.node_id == "l1-child"
    assert [net.name for net in parent.networks()] == ["parent", "child"]
    rebuilt = NoN.from_spec(decode_spec(msgspec.json.encode(parent.to_spec())))
    assert rebuilt.fingerprint == parent.fingerprint


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_spec_files_round_trip(tmp_path: Path, suffix: str) -> None:
    net = NoN.from_operators(
        [
            Node(
                "classify",
                ModelConfig(provider=ModelProvider.MOCK, temperature=0.0),
                categories=["a", "b"],
            ),
            Node("generate", additional_prompt_context="be brief") * 2,
        ],
        name="files",
        layer_config=LayerConfig(
            error_policy=ErrorPolicy.RETURN_PARTIAL, min_success_threshold=0.5
        ),
    )
    path = tmp_path / f"net{suffix}"
    net.save(path)
    loaded = NoN.load(path)
    assert loaded.fingerprint == net.fingerprint
    classify = loaded.get_node("l0-classify")
    assert isinstance(classify, Node)
    assert classify.arguments == {"categories": ["a", "b"]}
    assert loaded.layers[1].layer_config.error_policy is ErrorPolicy.RETURN_PARTIAL


def test_custom_operator_travels_as_a_module_path() -> None:
    from tests.support import custom_ops

    operator_name = next(
        name for name in dir(custom_ops) if hasattr(getattr(custom_ops, name), "__nons_operator__")
    )
    net = NoN.from_operators([operator_name], name="custom")
    spec = net.to_spec().layers[0].nodes[0]
    assert spec.operator_module == "tests.support.custom_ops"
    assert NoN.from_spec(net.to_spec()).fingerprint == net.fingerprint
    assert (
        NoN.from_operators(["generate"], name="b").to_spec().layers[0].nodes[0].operator_module
        is None
    )


def test_spec_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "layers": [], "bogus": 1}))
    with pytest.raises(SpecError, match="bogus"):
        load_spec(bad)
    with pytest.raises(SpecError, match="must end in"):
        load_spec(tmp_path / "net.toml")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_fingerprint_changes_with_any_setting() -> None:
    a = NoN.from_operators([Node("generate", ModelConfig(temperature=0.1))], name="n")
    b = NoN.from_operators([Node("generate", ModelConfig(temperature=0.2))], name="n")
    assert spec_fingerprint(a.to_spec()) != spec_fingerprint(b.to_spec())


def test_model_config_validates_and_accepts_provider_names() -> None:
    assert ModelConfig(provider="anthropic").provider is ModelProvider.ANTHROPIC  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown model provider"):
        ModelConfig(provider="gemini")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="temperature"):
        ModelConfig(temperature=3.0)
    node = Node("generate")
    node.configure_model(temperature=0.1, seed=7)
    assert node.model_config is not None
    assert node.model_config.temperature == 0.1
    assert node.model_config.extra_params == {"seed": 7}


def test_usage_and_cost_add_up() -> None:
    a = TokenUsage(prompt_tokens=10, completion_tokens=5, cache_read_tokens=2)
    b = TokenUsage(prompt_tokens=1, completion_tokens=1)
    assert (a + b).total_tokens == 19
    assert (
        CostInfo(input_cost_usd=0.5, output_cost_usd=0.25) + CostInfo(input_cost_usd=0.25)
    ).total_cost_usd == pytest.approx(1.0)
    layer = LayerResult(
        layer_index=0,
        status="completed",
        nodes=[
            NodeResult(node_id="a", operator="x", output=1, usage=a),
            NodeResult(node_id="b", operator="x", output=2, usage=b),
        ],
    )
    assert layer.usage.total_tokens == 19
    assert layer.output == [1, 2]
    single = LayerResult(
        layer_index=1,
        status="completed",
        nodes=[NodeResult(node_id="c", operator="x", output="only")],
    )
    assert single.output == "only"


def test_failed_result_raises_its_typed_error() -> None:
    result = ExecutionResult(
        output=None,
        status="failed",
        metadata=ExecutionMetadata(execution_id="e1", network="n"),
        error=ErrorInfo(
            type="node_timeout", message="slow", retryable=True, details={"node_id": "a"}
        ),
    )
    with pytest.raises(NodeTimeoutError, match="slow") as caught:
        result.raise_for_status()
    assert caught.value.details == {"node_id": "a"}
    assert caught.value.result is result  # type: ignore[attr-defined]
    validation = ErrorInfo(
        type="validation_error",
        message="bad",
        details={"operator": "op", "direction": "input", "field": "$.x", "rule": "enum"},
    ).to_exception()
    assert isinstance(validation, OperatorValidationError)
    assert validation.rule == "enum"


def test_fingerprint_ignores_fields_left_at_their_default() -> None:
    from nons.core.spec import encode_spec

    net = NoN.from_operators([Node("generate", ModelConfig(temperature=0.2))], name="stable")
    encoded = encode_spec(net.to_spec()).decode()
    assert '"temperature":0.2' in encoded
    # A field at its default is not encoded, so a later runtime that adds defaulted
    # fields computes the same fingerprint for the same network.
    assert "max_tokens" not in encoded
    assert "prompt_context" not in encoded
