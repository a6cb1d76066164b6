"""An operator's input schema describes what it is given: the keyword object, or the value.

A parallel layer hands the next layer a list. An aggregator can take it with an object
schema (`{"type": "object", "properties": {"items": {"type": "array"}}}`) or with a
schema of the list itself (`{"type": "array"}`): both must be callable (issue 16, item 2).
"""

from __future__ import annotations

from typing import Any

import pytest

from nons.core.errors import OperatorValidationError
from nons.operators import registry
from nons.operators._schema import describes_arguments
from nons.operators.registry import operator


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    registry.ensure_builtins()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _count_operator() -> registry.OperatorDefinition:
    @operator(
        input_schema={"type": "array", "items": {"type": "string"}, "minItems": 1},
        output_schema={"type": "integer"},
    )
    async def count_items(items: list[Any], label: str = "n") -> int:
        return len(items)

    definition: registry.OperatorDefinition = count_items.__nons_operator__  # type: ignore[attr-defined]
    return definition


async def test_array_schema_validates_the_list_itself() -> None:
    count = _count_operator()
    assert await count.invoke(["a", "b", "c"], {}) == 3


async def test_array_schema_takes_the_list_by_keyword_too() -> None:
    count = _count_operator()
    assert await count.invoke({"items": ["a", "b"], "label": "x"}, {}) == 2


async def test_array_schema_violation_names_the_path_inside_the_value() -> None:
    count = _count_operator()
    with pytest.raises(OperatorValidationError) as caught:
        await count.invoke(["a", 2], {})
    assert (caught.value.field, caught.value.rule) == ("$[1]", "type")
    with pytest.raises(OperatorValidationError) as empty:
        await count.invoke([], {})
    assert empty.value.rule == "minItems"


async def test_array_schema_rejects_an_object_that_is_not_the_list() -> None:
    count = _count_operator()
    with pytest.raises(OperatorValidationError) as caught:
        await count.invoke({"unrelated": 1, "other": 2}, {})
    assert (caught.value.field, caught.value.rule) == ("$", "type")


async def test_array_schema_missing_first_parameter_is_a_required_violation() -> None:
    count = _count_operator()
    with pytest.raises(OperatorValidationError) as caught:
        await count.invoke({"label": "x"}, {})
    assert (caught.value.field, caught.value.rule) == ("$.items", "required")


async def test_scalar_schema_validates_the_value() -> None:
    @operator(input_schema={"type": "string", "minLength": 2}, output_schema={"type": "string"})
    async def shout_value(text: str) -> str:
        return text.upper()

    definition: registry.OperatorDefinition = shout_value.__nons_operator__  # type: ignore[attr-defined]
    assert await definition.invoke("hi", {}) == "HI"
    with pytest.raises(OperatorValidationError):
        await definition.invoke("h", {})


async def test_object_schema_still_describes_the_keyword_arguments() -> None:
    @operator(
        input_schema={
            "type": "object",
            "properties": {"items": {"type": "array"}},
            "required": ["items"],
        }
    )
    async def count_object(items: list[Any]) -> int:
        return len(items)

    definition: registry.OperatorDefinition = count_object.__nons_operator__  # type: ignore[attr-defined]
    assert await definition.invoke([1, 2], {}) == 2
    with pytest.raises(OperatorValidationError) as caught:
        await definition.invoke("not a list", {})
    assert caught.value.field == "$.items"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({}, True),
        ({"type": "object"}, True),
        ({"properties": {"a": {}}}, True),
        ({"type": ["object", "null"]}, True),
        ({"type": "array"}, False),
        ({"type": "string"}, False),
        ({"type": ["array", "null"]}, False),
    ],
)
def test_which_schemas_describe_the_keyword_object(
    schema: dict[str, object], expected: bool
) -> None:
    assert describes_arguments(schema) is expected
