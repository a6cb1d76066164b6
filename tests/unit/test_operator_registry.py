from __future__ import annotations

import subprocess
import sys
from typing import Any

import jsonschema
import pytest

from nons.core.errors import ConfigurationError, OperatorValidationError, UnknownOperatorError
from nons.operators import _schema, registry
from nons.operators.registry import (
    OperatorDefinition,
    get_operator,
    get_operator_info,
    list_operators,
    operator,
    resolve_operator,
)

BUILTINS = {
    "classify",
    "compare",
    "condense",
    "expand",
    "extract",
    "extract_winners",
    "generate",
    "majority",
    "pack_candidates",
    "route",
    "select_by_id",
    "synthesize",
    "transform",
    "validate",
}

LABEL_INPUT: dict[str, object] = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "categories": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "mode": {"enum": ["fast", "careful"]},
    },
    "required": ["text", "categories"],
}
LABEL_OUTPUT: dict[str, object] = {
    "type": "object",
    "properties": {"label": {"type": "string"}},
    "required": ["label"],
}


CUSTOM_OPS = "tests.support.custom_ops"


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy, so names can be reused across tests.

    The custom operator module is recorded first, so that monkeypatch (undoing in
    reverse order) puts `sys.modules` back exactly as it was: a later import then
    registers the module in the real registry again.
    """
    registry.ensure_builtins()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    module = sys.modules.get(CUSTOM_OPS)
    if module is None:
        monkeypatch.setitem(sys.modules, CUSTOM_OPS, None)
        monkeypatch.delitem(sys.modules, CUSTOM_OPS)
    else:
        monkeypatch.setitem(sys.modules, CUSTOM_OPS, module)


def _define_label_text() -> Any:
    @operator(input_schema=LABEL_INPUT, output_schema=LABEL_OUTPUT, description="Pick a label.")
    async def label_text(text: str, categories: list[str], mode: str = "fast") -> dict[str, str]:
        return {"label": f"{categories[0]}:{mode}:{text}"}

    return label_text


async def test_docs_style_operator_registers_under_its_name() -> None:
    function = _define_label_text()
    definition = get_operator("label_text")
    assert function.__nons_operator__ is definition
    assert definition.name == "label_text"
    assert definition.description == "Pick a label."
    assert definition.module == __name__
    assert definition.first_parameter == "text"
    assert definition.input_schema == LABEL_INPUT
    assert "label_text" in list_operators()
    info = get_operator_info("label_text")
    assert info["output_schema"] == LABEL_OUTPUT
    assert info["module"] == __name__
    # Still a plain coroutine function when called directly.
    assert await function("hi", ["a"]) == {"label": "a:fast:hi"}


async def test_valid_input_is_called_with_keyword_arguments() -> None:
    _define_label_text()
    output = await get_operator("label_text").invoke(
        {"text": "hi", "categories": ["x", "y"], "mode": "careful"}, {}
    )
    assert output == {"label": "x:careful:hi"}


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ({"text": "hi", "categories": []}, "$.categories", "minItems"),
        ({"text": "hi", "categories": ["a"], "mode": "slow"}, "$.mode", "enum"),
        ({"text": "hi"}, "$.categories", "required"),
        ({"text": 3, "categories": ["a"]}, "$.text", "type"),
        ({"text": "hi", "categories": ["a", 7]}, "$.categories[1]", "type"),
    ],
)
async def test_input_violations_name_field_and_rule(
    payload: dict[str, object], field: str, rule: str
) -> None:
    _define_label_text()
    with pytest.raises(OperatorValidationError) as caught:
        await get_operator("label_text").invoke(payload, {})
    error = caught.value
    assert (error.operator, error.direction, error.field, error.rule) == (
        "label_text",
        "input",
        field,
        rule,
    )
    assert str(error).startswith(f"label_text input: {field}: ")
    assert str(error).endswith(f"({rule})")
    assert error.details == {
        "operator": "label_text",
        "direction": "input",
        "field": field,
        "rule": rule,
    }


async def test_input_is_validated_on_every_call() -> None:
    _define_label_text()
    definition = get_operator("label_text")
    assert await definition.invoke({"text": "a", "categories": ["c"]}, {}) == {"label": "c:fast:a"}
    with pytest.raises(OperatorValidationError):
        await definition.invoke({"text": "a", "categories": []}, {})
    assert await definition.invoke({"text": "b", "categories": ["c"]}, {}) == {"label": "c:fast:b"}


async def test_output_is_validated() -> None:
    @operator(output_schema=LABEL_OUTPUT)
    async def sloppy(text: str) -> dict[str, str]:
        return {"lbl": text}

    with pytest.raises(OperatorValidationError) as caught:
        await get_operator("sloppy").invoke("x", {})
    assert (caught.value.direction, caught.value.field, caught.value.rule) == (
        "output",
        "$.label",
        "required",
    )
    assert (
        str(caught.value)
        == "sloppy output: $.label: required property 'label' is missing (required)"
    )


async def test_validators_are_compiled_once_per_direction(monkeypatch: pytest.MonkeyPatch) -> None:
    constructed: list[object] = []

    real = jsonschema.Draft202012Validator

    class CountingValidator:
        check_schema = staticmethod(real.check_schema)
        FORMAT_CHECKER = real.FORMAT_CHECKER

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            constructed.append(args[0])
            return real(*args, **kwargs)

    monkeypatch.setattr(_schema, "Draft202012Validator", CountingValidator)
    _define_label_text()
    assert constructed == [LABEL_INPUT, LABEL_OUTPUT]
    definition = get_operator("label_text")
    for index in range(5):
        await definition.invoke({"text": str(index), "categories": ["a"]}, {})
    with pytest.raises(OperatorValidationError):
        await definition.invoke({"text": "x", "categories": []}, {})
    assert len(constructed) == 2


async def test_non_object_input_is_the_first_argument_and_arguments_are_bound() -> None:
    _define_label_text()
    definition = get_operator("label_text")
    assert await definition.invoke("plain text", {"categories": ["bound"]}) == {
        "label": "bound:fast:plain text"
    }
    # Tuples bound from Python become JSON arrays.
    assert definition.build_arguments("t", {"categories": ("a", "b")}) == {
        "text": "t",
        "categories": ["a", "b"],
    }


async def test_object_input_overrides_bound_arguments() -> None:
    _define_label_text()
    output = await get_operator("label_text").invoke(
        {"text": "hi", "mode": "careful"}, {"categories": ["bound"], "mode": "fast"}
    )
    assert output == {"label": "bound:careful:hi"}


async def test_object_output_of_another_operator_is_the_first_argument() -> None:
    seen: list[object] = []

    @operator
    async def take(content: object, style: str = "plain") -> str:
        seen.append(content)
        return style

    definition = get_operator("take")
    # Names no parameter: an upstream operator's object output, passed whole.
    assert await definition.invoke({"name": "Bob", "age": 3}, {}) == "plain"
    assert seen == [{"name": "Bob", "age": 3}]
    # Names only parameters: keyword arguments.
    assert await definition.invoke({"content": "c", "style": "bold"}, {}) == "bold"
    assert seen[-1:] == ["c"]
    # A list from a parallel layer is the first argument too.
    await definition.invoke(["a", "b"], {})
    assert seen[-1] == ["a", "b"]


async def test_unknown_parameter_is_an_additional_properties_violation() -> None:
    _define_label_text()
    with pytest.raises(OperatorValidationError) as caught:
        await get_operator("label_text").invoke({"text": "hi", "categories": ["a"], "tone": 1}, {})
    assert (caught.value.field, caught.value.rule, caught.value.direction) == (
        "$.tone",
        "additionalProperties",
        "input",
    )


async def test_var_keyword_operator_accepts_any_keyword() -> None:
    @operator
    async def anything(content: object, **extra: object) -> dict[str, object]:
        return {"content": content, **extra}

    definition = get_operator("anything")
    assert definition.accepts_any_keyword
    assert await definition.invoke({"content": 1, "flavour": "x"}, {"bound": True}) == {
        "content": 1,
        "flavour": "x",
        "bound": True,
    }


async def test_bare_decorator_derives_the_input_schema() -> None:
    @operator
    async def echo(text: str, suffix: str = "!") -> str:
        """Echo text back."""
        return text + suffix

    definition = get_operator("echo")
    assert definition.input_schema == {
        "type": "object",
        "properties": {"text": {}, "suffix": {}},
        "required": ["text"],
    }
    assert definition.output_schema == {}
    assert definition.description == "Echo text back."
    assert await definition.invoke("hi", {}) == "hi!"
    with pytest.raises(OperatorValidationError) as caught:
        await definition.invoke({"suffix": "?"}, {})
    assert (caught.value.field, caught.value.rule) == ("$.text", "required")


def test_explicit_name_is_used() -> None:
    @operator(name="renamed_op")
    async def original(text: str) -> str:
        return text

    assert get_operator("renamed_op").function is original
    with pytest.raises(UnknownOperatorError):
        get_operator("original")


def test_unknown_operator_lists_names_and_suggests() -> None:
    with pytest.raises(UnknownOperatorError) as caught:
        get_operator("clasify")
    message = str(caught.value)
    assert "did you mean 'classify'?" in message
    for name in BUILTINS:
        assert name in message
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, KeyError)


def test_builtins_are_always_registered() -> None:
    assert BUILTINS <= set(list_operators())
    assert list_operators() == sorted(list_operators())
    assert get_operator("generate").module == "nons.operators.llm"
    assert get_operator("majority").module == "nons.operators.ensemble"


async def test_resolve_operator_imports_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    registry._REGISTRY.pop("shout", None)
    registry._REGISTRY.pop("shout_and_ask", None)
    monkeypatch.delitem(sys.modules, CUSTOM_OPS, raising=False)
    with pytest.raises(UnknownOperatorError):
        get_operator("shout")
    definition = resolve_operator("shout", CUSTOM_OPS)
    assert definition.module == CUSTOM_OPS
    assert CUSTOM_OPS in sys.modules
    assert await definition.invoke({"text": "hey", "times": 2}, {}) == "HEY HEY"
    with pytest.raises(OperatorValidationError) as caught:
        await definition.invoke({"text": "hey", "times": 9}, {})
    assert caught.value.rule == "maximum"


def test_resolve_operator_with_a_bad_module_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot import its module"):
        resolve_operator("nowhere_op", "tests.support.no_such_module")
    with pytest.raises(UnknownOperatorError):
        resolve_operator("nowhere_op", None)


def test_reimporting_a_module_replaces_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    registry._REGISTRY.pop("shout", None)
    monkeypatch.delitem(sys.modules, CUSTOM_OPS, raising=False)
    first = resolve_operator("shout", CUSTOM_OPS)
    monkeypatch.delitem(sys.modules, CUSTOM_OPS)
    import tests.support.custom_ops as reloaded

    second = get_operator("shout")
    assert second is not first
    assert second.function is reloaded.shout


def test_same_function_registers_twice_different_function_is_refused() -> None:
    async def twice(text: str) -> str:
        return text

    operator(twice)
    operator(twice)
    assert get_operator("twice").function is twice

    async def other(text: str) -> str:
        return text

    with pytest.raises(ConfigurationError, match="'twice' is taken"):
        operator(name="twice")(other)
    assert get_operator("twice").function is twice
    with pytest.raises(ConfigurationError, match="is taken"):
        operator(name="classify")(other)


def test_sync_function_is_refused() -> None:
    def not_async(text: str) -> str:
        return text

    with pytest.raises(ConfigurationError, match="async def"):
        operator(not_async)  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("schemas", "direction"),
    [
        ({"input_schema": {"type": "strnig"}}, "input"),
        ({"input_schema": {"type": "object", "properties": {"x": {"minItems": -1}}}}, "input"),
        ({"output_schema": {"required": "label"}}, "output"),
    ],
)
def test_bad_schema_fails_at_decoration_time(
    schemas: dict[str, dict[str, object]], direction: str
) -> None:
    async def bad_schema_op(x: object) -> object:
        return x

    with pytest.raises(ConfigurationError, match=f"invalid {direction}_schema"):
        operator(**schemas)(bad_schema_op)  # type: ignore[call-overload]
    with pytest.raises(UnknownOperatorError):
        get_operator("bad_schema_op")


def test_positional_only_parameters_are_refused() -> None:
    async def positional(text: str, /) -> str:
        return text

    with pytest.raises(ConfigurationError, match="by keyword"):
        operator(positional)


def test_definition_is_frozen() -> None:
    definition = get_operator("generate")
    assert isinstance(definition, OperatorDefinition)
    with pytest.raises(AttributeError):
        definition.name = "other"  # type: ignore[misc]


def test_importing_operators_stays_light() -> None:
    code = (
        "import sys, nons.operators as o; o.list_operators(); "
        "bad = [m for m in ('nats', 'anthropic', 'opentelemetry', 'openai') if m in sys.modules]; "
        "print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"
