"""The `@operator` of the built-in operator modules: it marks, the registry registers.

The registry imports the built-in modules by name on first lookup (so that importing
`nons.operators` stays light). If those modules imported the registry back, the two
would form an import cycle; instead they import this module, whose decorator only
records the arguments, and `registry.ensure_builtins` registers each marked function
with the real `@operator` after the import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

__all__ = ("MARK", "operator")

MARK = "__nons_builtin__"
"""Attribute holding the `@operator` keyword arguments of a built-in operator."""

OperatorFunction = TypeVar("OperatorFunction", bound=Callable[..., Awaitable[Any]])


@overload
def operator(name: OperatorFunction) -> OperatorFunction: ...


@overload
def operator(
    name: str | None = None,
    *,
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    description: str | None = None,
) -> Callable[[OperatorFunction], OperatorFunction]: ...


def operator(
    name: str | OperatorFunction | None = None,
    *,
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    description: str | None = None,
) -> OperatorFunction | Callable[[OperatorFunction], OperatorFunction]:
    """Mark a built-in operator; same arguments as `nons.operators.registry.operator`."""

    def mark(function: OperatorFunction) -> OperatorFunction:
        setattr(
            function,
            MARK,
            {
                "name": name if isinstance(name, str) else None,
                "input_schema": input_schema,
                "output_schema": output_schema,
                "description": description,
            },
        )
        return function

    if callable(name):
        return mark(name)
    return mark
