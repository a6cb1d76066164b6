from __future__ import annotations

import sys
import textwrap
import uuid
from typing import TYPE_CHECKING

import pytest

from nons import NoN
from nons.cli._loading import load_networks, load_targets
from nons.core.errors import ConfigurationError, SpecError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_BODY = """
from nons import NoN, Node

network = NoN.from_operators(["transform", [Node("classify"), "extract"]], name="{name}")
other = NoN.from_operators(["generate"], name="{name}-other")
both = [network, other]
pair = (network, other)


def factory():
    return network


def factory_list():
    return [network, other]


def needs_argument(x):
    return network


async def coroutine_factory():
    return network


def raising_factory():
    raise RuntimeError("boom")


number = 42
empty = []
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A fresh importable module in tmp_path; sys.path and sys.modules restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"nets_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(_BODY.format(name=name.replace("_", "-")))
    yield name, tmp_path
    sys.modules.pop(name, None)


def test_attribute_holding_a_network(module: tuple[str, Path]) -> None:
    name, path = module
    [network] = load_networks(f"{name}:network", search_path=path)
    assert isinstance(network, NoN)
    assert network.name == name.replace("_", "-")
    assert str(path.resolve()) in sys.path


@pytest.mark.parametrize("attribute", ["both", "pair", "factory_list"])
def test_lists_tuples_and_factories_of_lists(module: tuple[str, Path], attribute: str) -> None:
    name, path = module
    networks = load_networks(f"{name}:{attribute}", search_path=path)
    assert [n.name for n in networks] == [name.replace("_", "-"), f"{name.replace('_', '-')}-other"]


def test_zero_argument_factory(module: tuple[str, Path]) -> None:
    name, path = module
    [network] = load_networks(f"{name}:factory", search_path=path)
    assert network.name == name.replace("_", "-")


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("missing", "has no attribute 'missing'"),
        ("number", "is a int, not a NoN"),
        ("empty", "is a list, not a NoN"),
        ("needs_argument", "must take no arguments"),
        ("coroutine_factory", "not a coroutine"),
        ("raising_factory", "RuntimeError: boom"),
    ],
)
def test_unusable_attributes_are_refused_clearly(
    module: tuple[str, Path], attribute: str, message: str
) -> None:
    name, path = module
    with pytest.raises(SpecError, match=message):
        load_networks(f"{name}:{attribute}", search_path=path)


def test_missing_module_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SpecError, match="no module named 'no_such_module_xyz'"):
        load_networks("no_such_module_xyz:network", search_path=tmp_path)


def test_module_whose_own_import_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"broken_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("import not_installed_dependency_xyz\n")
    try:
        with pytest.raises(SpecError, match="importing .* failed: No module named"):
            load_networks(f"{name}:network", search_path=tmp_path)
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("target", ["", "plainword", ":network", "module:"])
def test_malformed_targets(target: str) -> None:
    with pytest.raises(SpecError):
        load_networks(target)


def test_spec_files_json_and_yaml(tmp_path: Path) -> None:
    network = NoN.from_operators(["transform", "generate"], name="filed")
    for suffix in (".json", ".yaml", ".yml"):
        path = tmp_path / f"net{suffix}"
        network.save(path)
        [loaded] = load_networks(str(path))
        assert loaded.fingerprint == network.fingerprint


def test_spec_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_networks(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nlayers: []\n")
    with pytest.raises(SpecError, match="at least one layer"):
        load_networks(str(bad))
    other = tmp_path / "net.txt"
    other.write_text("x")
    with pytest.raises(SpecError, match=r"must end in \.json"):
        load_networks(str(other))


def test_the_repository_examples_load() -> None:
    networks = load_targets(
        [
            "examples.quickstart:network",
            "examples.ensemble:network",
            "examples.custom_operator:network",
            "examples/triage.yaml",
        ]
    )
    assert [n.name for n in networks] == ["quickstart", "ensemble", "keywords", "triage"]


def test_same_definition_twice_is_kept_once(tmp_path: Path) -> None:
    network = NoN.from_operators(["transform"], name="twice")
    network.save(tmp_path / "a.json")
    network.save(tmp_path / "b.yaml")
    networks = load_targets([str(tmp_path / "a.json"), str(tmp_path / "b.yaml")])
    assert len(networks) == 1


def test_two_definitions_under_one_name_are_refused(tmp_path: Path) -> None:
    NoN.from_operators(["transform"], name="clash").save(tmp_path / "a.json")
    NoN.from_operators(["generate"], name="clash").save(tmp_path / "b.json")
    with pytest.raises(ConfigurationError, match="two different networks are named 'clash'"):
        load_targets([str(tmp_path / "a.json"), str(tmp_path / "b.json")])


def test_sub_network_clash_is_refused(tmp_path: Path) -> None:
    child = NoN.from_operators(["transform"], name="child")
    NoN.from_operators([child, "generate"], name="parent").save(tmp_path / "a.json")
    NoN.from_operators(["condense"], name="child").save(tmp_path / "b.json")
    with pytest.raises(ConfigurationError, match="'child'"):
        load_targets([str(tmp_path / "a.json"), str(tmp_path / "b.json")])


def test_no_targets() -> None:
    with pytest.raises(SpecError, match="at least one target"):
        load_targets([])


def test_module_text_is_valid_python() -> None:
    compile(textwrap.dedent(_BODY.format(name="x")), "<body>", "exec")
