"""Operators: the registry, the per-call model context, and the built-in operators.

Importing this package stays light (no NATS, SDK or OpenTelemetry import): the
built-in operators are registered on first lookup through the registry.
"""

from nons.operators.context import OperatorContext, call_model, current_context, use_context
from nons.operators.registry import (
    OperatorDefinition,
    get_operator,
    get_operator_info,
    list_operators,
    operator,
    resolve_operator,
)

__all__ = (
    "OperatorContext",
    "OperatorDefinition",
    "call_model",
    "current_context",
    "get_operator",
    "get_operator_info",
    "list_operators",
    "operator",
    "resolve_operator",
    "use_context",
)
