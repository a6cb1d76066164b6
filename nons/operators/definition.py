"""What an operator is once registered: its function, schemas and compiled validators.

Apart from `registry` (which names and finds operators) so each module has one job;
the validators are compiled once here, when the operator is defined, never per call.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from nons.core.errors import OperatorValidationError
from nons.operators._schema import JSONSchema, SchemaValidator, json_path

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from nons.core.types import Content

__all__ = ("OperatorDefinition",)


@dataclass(frozen=True, kw_only=True, eq=False)
class OperatorDefinition:
    """A registered operator: its function, schemas and compiled validators."""

    name: str
    """Registered name, as nodes and specs refer to it."""
    function: Callable[..., Awaitable[Any]]
    """The decorated `async def` function (unwrapped: callable directly)."""
    input_schema: JSONSchema
    """JSON Schema of the keyword arguments as one JSON object or, when its `type` rules
    an object out (`{"type": "array"}`), of the first parameter's value."""
    output_schema: JSONSchema
    """JSON Schema of the return value (`{}` accepts anything)."""
    description: str
    """What the operator does (the docstring's first line by default)."""
    module: str
    """Importable module path of `function`, which registers it when imported."""
    first_parameter: str
    """Parameter that receives an input which is not taken as keyword arguments."""
    parameters: frozenset[str]
    """Names the function accepts as keyword arguments."""
    accepts_any_keyword: bool
    """True when the function takes `**kwargs`."""
    input_validator: SchemaValidator = field(repr=False)
    """`input_schema`, compiled once."""
    output_validator: SchemaValidator = field(repr=False)
    """`output_schema`, compiled once."""
    input_schema_is_value: bool = False
    """True when `input_schema` describes the first parameter's value, not the keywords."""

    async def invoke(self, input: Content, arguments: Mapping[str, Any]) -> Any:
        """Call the operator with validated input and check what it returns.

        Args:
            input: a JSON object that names the first parameter (or only names
                parameters) is taken as keyword arguments; anything else (text, a
                list from a parallel layer, another operator's object output) is the
                value of the first parameter.
            arguments: arguments bound to the node (e.g. `categories`); the input wins
                where both give a value.

        Returns:
            The operator's output, valid against `output_schema`.

        Raises:
            OperatorValidationError: the input or the output violates its schema, or
                the input names a parameter the function does not take
                (`rule="additionalProperties"`).
        """
        kwargs = self.build_arguments(input, arguments)
        self.validate_input(kwargs)
        output = await self.function(**kwargs)
        self.output_validator.validate(output)
        return output

    def build_arguments(self, input: Content, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments `invoke` calls the function with (before validation).

        Raises:
            OperatorValidationError: a keyword the function does not accept.
        """
        if self._is_keyword_input(input):
            merged = {**arguments, **input}
        else:
            merged = {**arguments, self.first_parameter: input}
        # Bound arguments written in Python may be tuples; JSON Schema arrays are lists.
        kwargs = {key: list(v) if isinstance(v, tuple) else v for key, v in merged.items()}
        if not self.accepts_any_keyword:
            unknown = sorted(set(kwargs) - self.parameters)
            if unknown:
                field_path = json_path([unknown[0]])
                raise OperatorValidationError(
                    f"{self.name} input: {field_path}: unexpected parameter(s) "
                    f"{', '.join(unknown)}; {self.name} takes {', '.join(sorted(self.parameters))}"
                    " (additionalProperties)",
                    operator=self.name,
                    direction="input",
                    field=field_path,
                    rule="additionalProperties",
                )
        return kwargs

    def validate_input(self, kwargs: Mapping[str, Any]) -> None:
        """Check built keyword arguments against `input_schema`.

        An object schema sees all the keyword arguments; a value schema
        (`{"type": "array"}`) sees the first parameter's value, and error paths are
        relative to that value (`$[1]` is the list's second item).

        Raises:
            OperatorValidationError: a violation, or (value schema) no value for a
                first parameter without a default (`rule="required"`).
        """
        if not self.input_schema_is_value:
            self.input_validator.validate(kwargs)
        elif self.first_parameter in kwargs:
            self.input_validator.validate(kwargs[self.first_parameter])
        elif self._first_parameter_required():
            field_path = json_path([self.first_parameter])
            raise OperatorValidationError(
                f"{self.name} input: {field_path}: required property "
                f"{self.first_parameter!r} is missing (required)",
                operator=self.name,
                direction="input",
                field=field_path,
                rule="required",
            )

    def info(self) -> dict[str, object]:
        """A JSON-safe description for listings and the CLI."""
        return {
            "name": self.name,
            "description": self.description,
            "module": self.module,
            "first_parameter": self.first_parameter,
            "input_schema": dict(self.input_schema),
            "output_schema": dict(self.output_schema),
        }

    def _first_parameter_required(self) -> bool:
        parameter = inspect.signature(self.function).parameters[self.first_parameter]
        return parameter.default is inspect.Parameter.empty

    def _is_keyword_input(self, input: object) -> TypeGuard[dict[str, Any]]:
        if not isinstance(input, dict) or not all(isinstance(key, str) for key in input):
            return False
        if self.first_parameter in input:
            return True
        return bool(input) and (self.accepts_any_keyword or set(input) <= self.parameters)
