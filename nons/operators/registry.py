"""The operator registry: `@operator` turns an async function into a validated operator.

Operators are found by name, in every process that imports the module defining them.
That is how custom operators travel: a network spec names an operator and the
importable module that registers it, and `resolve_operator` imports that module in
the process that runs the node (never a pickle).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from nons.core.errors import ConfigurationError, UnknownOperatorError
from nons.operators import _builtin as builtin
from nons.operators._schema import JSONSchema, SchemaValidator, describes_arguments
from nons.operators.definition import OperatorDefinition

__all__ = (
    "BUILTIN_MODULES",
    "OperatorDefinition",
    "ensure_builtins",
    "get_operator",
    "get_operator_info",
    "list_operators",
    "operator",
    "resolve_operator",
)

BUILTIN_MODULES: tuple[str, ...] = ("nons.operators.llm", "nons.operators.ensemble")
"""Modules whose import registers the built-in operators."""

OperatorFunction = TypeVar("OperatorFunction", bound=Callable[..., Awaitable[Any]])

_REGISTRY: dict[str, OperatorDefinition] = {}
_builtins_loaded = False


@overload
def operator(name: OperatorFunction) -> OperatorFunction: ...


@overload
def operator(
    name: str | None = None,
    *,
    input_schema: JSONSchema | None = None,
    output_schema: JSONSchema | None = None,
    description: str | None = None,
) -> Callable[[OperatorFunction], OperatorFunction]: ...


def operator(
    name: str | OperatorFunction | None = None,
    *,
    input_schema: JSONSchema | None = None,
    output_schema: JSONSchema | None = None,
    description: str | None = None,
) -> OperatorFunction | Callable[[OperatorFunction], OperatorFunction]:
    """Register an `async def` function as an operator (`@operator` or `@operator(...)`).

    Args:
        name: registered name; the function's `__name__` by default.
        input_schema: JSON Schema of the keyword arguments as one object; derived from
            the signature by default (every parameter allowed, those without a
            default required). A schema whose `type` rules an object out
            (`{"type": "array"}` for a parallel layer's list) describes the first
            parameter's value instead.
        output_schema: JSON Schema of the return value; `{}` (anything) by default.
        description: what the operator does; the docstring's first line by default.

    Returns:
        The function itself, still directly callable, with `__nons_operator__` set to
        its `OperatorDefinition`.

    Raises:
        ConfigurationError: a sync function, a bad schema, a signature the runtime
            cannot call by keyword, or another function already registered under
            the name.
    """

    def decorate(function: OperatorFunction) -> OperatorFunction:
        definition = _define(
            function,
            name=name if isinstance(name, str) else None,
            input_schema=input_schema,
            output_schema=output_schema,
            description=description,
        )
        _register(definition)
        function.__nons_operator__ = definition  # type: ignore[attr-defined]
        return function

    if callable(name):
        return decorate(name)
    return decorate


def get_operator(name: str) -> OperatorDefinition:
    """The operator registered under `name` (built-ins are always registered).

    Raises:
        UnknownOperatorError: listing the known names and the closest match.
    """
    ensure_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownOperatorError(
            f"unknown operator {name!r}{hint}; known operators: {', '.join(known)}"
        ) from None


def list_operators() -> list[str]:
    """Names of every registered operator, sorted."""
    ensure_builtins()
    return sorted(_REGISTRY)


def get_operator_info(name: str) -> dict[str, object]:
    """Name, description, module and schemas of an operator, as plain JSON data.

    Raises:
        UnknownOperatorError: no operator has that name.
    """
    return get_operator(name).info()


def resolve_operator(name: str, module: str | None) -> OperatorDefinition:
    """Find an operator, importing the module that registers it when needed.

    This is how a custom operator reaches another process: specs carry its module
    path, and importing that module runs its `@operator` decorators.

    Raises:
        ConfigurationError: `module` cannot be imported.
        UnknownOperatorError: the operator is still not registered afterwards.
    """
    ensure_builtins()
    if name not in _REGISTRY and module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(
                f"operator {name!r}: cannot import its module {module!r}: {exc}"
            ) from exc
    return get_operator(name)


def ensure_builtins() -> None:
    """Import the built-in operator modules once and register the operators they mark.

    They mark with `nons.operators._builtin.operator` rather than registering
    themselves, so that they need not import this module (no import cycle).
    """
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    try:
        for module in BUILTIN_MODULES:
            for value in list(vars(importlib.import_module(module)).values()):
                marked = getattr(value, builtin.MARK, None)
                if marked is not None and not hasattr(value, "__nons_operator__"):
                    operator(**marked)(value)
    except BaseException:
        _builtins_loaded = False
        raise


def _define(
    function: Callable[..., Awaitable[Any]],
    *,
    name: str | None,
    input_schema: JSONSchema | None,
    output_schema: JSONSchema | None,
    description: str | None,
) -> OperatorDefinition:
    operator_name = name or getattr(function, "__name__", "")
    if not operator_name:
        raise ConfigurationError(f"{function!r} has no __name__: pass @operator(name=...)")
    if not inspect.iscoroutinefunction(function):
        raise ConfigurationError(
            f"operator {operator_name!r} must be an `async def` function "
            "(operators run on the event loop)"
        )
    parameters, accepts_any, first = _keyword_parameters(operator_name, function)
    schema_in = input_schema if input_schema is not None else _derived_schema(function)
    schema_out = output_schema if output_schema is not None else {}
    return OperatorDefinition(
        name=operator_name,
        function=function,
        input_schema=schema_in,
        output_schema=schema_out,
        description=description or _first_line(function.__doc__) or operator_name,
        module=function.__module__,
        first_parameter=first,
        parameters=parameters,
        accepts_any_keyword=accepts_any,
        input_validator=SchemaValidator(schema_in, operator=operator_name, direction="input"),
        output_validator=SchemaValidator(schema_out, operator=operator_name, direction="output"),
        input_schema_is_value=not describes_arguments(schema_in),
    )


def _register(definition: OperatorDefinition) -> None:
    existing = _REGISTRY.get(definition.name)
    if existing is not None and _identity(existing.function) != _identity(definition.function):
        raise ConfigurationError(
            f"operator name {definition.name!r} is taken by "
            f"{existing.module}.{_qualname(existing.function)}; "
            f"pass @operator(name=...) to register "
            f"{definition.module}.{_qualname(definition.function)} under another name"
        )
    _REGISTRY[definition.name] = definition


def _keyword_parameters(
    name: str, function: Callable[..., Awaitable[Any]]
) -> tuple[frozenset[str], bool, str]:
    parameters = inspect.signature(function).parameters.values()
    names: list[str] = []
    accepts_any = False
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any = True
        elif parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.VAR_POSITIONAL,
        ):
            raise ConfigurationError(
                f"operator {name!r}: parameter {parameter.name!r} cannot be passed by keyword; "
                "operators are called with keyword arguments"
            )
        else:
            names.append(parameter.name)
    if not names:
        raise ConfigurationError(
            f"operator {name!r} needs at least one named parameter to receive its input"
        )
    return frozenset(names), accepts_any, names[0]


def _derived_schema(function: Callable[..., Awaitable[Any]]) -> dict[str, object]:
    parameters = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    return {
        "type": "object",
        "properties": {p.name: {} for p in parameters},
        "required": [p.name for p in parameters if p.default is inspect.Parameter.empty],
    }


def _identity(function: Callable[..., Awaitable[Any]]) -> tuple[str, str]:
    return function.__module__, _qualname(function)


def _qualname(function: Callable[..., Awaitable[Any]]) -> str:
    return str(getattr(function, "__qualname__", getattr(function, "__name__", "?")))


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""
