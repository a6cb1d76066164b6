"""JSON Schema checks of operator inputs and outputs, compiled once per operator.

An operator's schemas are checked when it is registered (a bad schema is a developer
mistake, reported at decoration time) and compiled into one validator per direction,
so that a call only pays for validation, never for schema compilation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Literal, TypeAlias

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from nons.core.errors import ConfigurationError, OperatorValidationError

__all__ = (
    "Direction",
    "JSONSchema",
    "SchemaValidator",
    "check_schema",
    "describes_arguments",
    "json_path",
)

JSONSchema: TypeAlias = Mapping[str, object]
"""A JSON Schema document as a Python mapping (the `true` schema is `{}`)."""

Direction: TypeAlias = Literal["input", "output"]
"""Which side of an operator call a validator checks."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PREVIEW_CHARS = 120


def check_schema(schema: object, *, operator: str, direction: Direction) -> None:
    """Reject a schema that is not a valid Draft 2020-12 document.

    Raises:
        ConfigurationError: naming the operator, the direction and the schema's fault.
    """
    if not isinstance(schema, Mapping):
        raise ConfigurationError(
            f"operator {operator!r}: {direction}_schema must be a JSON Schema object (a dict), "
            f"got {type(schema).__name__}"
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = json_path(exc.absolute_path)
        raise ConfigurationError(
            f"operator {operator!r}: invalid {direction}_schema at {where}: {exc.message}"
        ) from exc


def describes_arguments(schema: JSONSchema) -> bool:
    """Whether an input schema describes the keyword arguments as one object.

    A schema whose `type` allows an object, or that names no `type` (`{}`, or only
    `properties`), describes the keyword arguments, as it always has. A schema whose
    `type` rules an object out (`"array"`, `"string"`, `["array", "null"]`...) cannot
    describe them: it describes the value of the operator's first parameter, which is
    how an aggregator writes `{"type": "array"}` for a parallel layer's list.
    """
    declared = schema.get("type")
    if declared is None:
        return True
    if isinstance(declared, str):
        return declared == "object"
    return isinstance(declared, list) and "object" in declared


class SchemaValidator:
    """One operator's compiled schema for one direction.

    Attributes:
        operator: the operator's registered name, used in error messages.
        direction: `"input"` or `"output"`.
        schema: the schema this validator checks against.
    """

    __slots__ = ("_validator", "direction", "operator", "schema")

    def __init__(self, schema: JSONSchema, *, operator: str, direction: Direction) -> None:
        """Check and compile `schema`.

        Raises:
            ConfigurationError: the schema is not a valid Draft 2020-12 document.
        """
        check_schema(schema, operator=operator, direction=direction)
        self.operator = operator
        self.direction: Direction = direction
        self.schema = schema
        self._validator = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )

    def validate(self, instance: object) -> None:
        """Check `instance`, reporting the most relevant violation.

        Raises:
            OperatorValidationError: with the JSON path of the offending value (`field`)
                and the failing keyword (`rule`); for `required`, `field` names the
                missing property.
        """
        if self._validator.is_valid(instance):
            return  # the common case: no error objects built, no ranking
        error = best_match(self._validator.iter_errors(instance))
        if error is None:
            return
        rule = str(error.validator)
        path = list(error.absolute_path)
        detail = error.message
        if rule == "required":
            missing = _first_missing(error.validator_value, error.instance)
            if missing is not None:
                path.append(missing)
                detail = f"required property {missing!r} is missing"
        field = json_path(path)
        raise OperatorValidationError(
            f"{self.operator} {self.direction}: {field}: {_shorten(detail)} ({rule})",
            operator=self.operator,
            direction=self.direction,
            field=field,
            rule=rule,
        )

    def is_valid(self, instance: object) -> bool:
        """Whether `instance` satisfies the schema, without building an error."""
        return bool(self._validator.is_valid(instance))


def json_path(parts: Iterable[str | int]) -> str:
    """A JSONPath-like rendering of a location: `$`, `$.items[0]`, `$['odd key']`."""
    rendered = ["$"]
    for part in parts:
        if isinstance(part, int):
            rendered.append(f"[{part}]")
        elif _IDENTIFIER.fullmatch(part):
            rendered.append(f".{part}")
        else:
            rendered.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(rendered)


def _first_missing(required: object, instance: object) -> str | None:
    if not isinstance(required, list) or not isinstance(instance, Mapping):
        return None
    for name in required:
        if isinstance(name, str) and name not in instance:
            return name
    return None


def _shorten(text: str) -> str:
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 3] + "..."
