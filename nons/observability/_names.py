"""Names every telemetry module shares: the instrumentation scope and `error.type`.

A leaf module, so that `tracing`, `genai` and `metrics` can use them without
importing each other (tracing sets telemetry up on first use, which installs the
GenAI wrapper: importing genai from tracing's dependencies would be a cycle).
"""

from __future__ import annotations

from nons.core.errors import ExecutionError

__all__ = ("INSTRUMENTATION_NAME", "error_type_of")

INSTRUMENTATION_NAME = "nons"
"""Instrumentation scope of every span this project creates."""


def error_type_of(error: BaseException) -> str:
    """The `error.type` attribute of an exception: our wire type, else the class name."""
    if isinstance(error, ExecutionError):
        return error.type
    cls = type(error)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
