"""A tiny custom operator module: resolved by module path, as another process would."""

from __future__ import annotations

from nons.operators import call_model, operator

__all__ = ("shout", "shout_and_ask")


@operator(
    input_schema={
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "times": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["text"],
    },
    output_schema={"type": "string"},
    description="Upper-case text, repeated.",
)
async def shout(text: str, times: int = 1) -> str:
    """Upper-case text, repeated."""
    return " ".join([text.upper()] * times)


@operator
async def shout_and_ask(text: str) -> str:
    """Ask the current node's model about upper-cased text."""
    return await call_model(text.upper(), system="Answer briefly.")
