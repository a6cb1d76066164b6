"""Custom aggregators after a parallel layer: three ways an operator takes the layer's list.

A parallel layer hands the next layer the list of its outputs. An operator receives a
value that is not its keyword arguments as its first parameter, so the list arrives as
`answers` in each operator below; what differs is the schema that checks it:

- `longest_answer`: no schema, one parameter. The derived schema only requires
  `answers`; anything goes in it.
- `answer_lengths`: an object schema, which describes the keyword arguments
  (`{"answers": [...], "unit": ...}`), so the list is checked as `$.answers`.
- `count_answers`: an array schema, which describes the list itself, so its errors
  point into the list (`$[1]`). A schema whose `type` rules an object out describes the
  first parameter's value.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import report
from nons import Node, NoN, operator

__all__ = ("answer_lengths", "count_answers", "longest_answer", "network")


@operator
async def longest_answer(answers: list[str]) -> str:
    """The longest of the answers (one parameter, schema derived from the signature)."""
    return max(answers, key=len)


@operator(
    input_schema={
        "type": "object",
        "properties": {
            "answers": {"type": "array", "items": {"type": "string"}},
            "unit": {"enum": ["characters", "words"]},
        },
        "required": ["answers"],
    },
    output_schema={"type": "array", "items": {"type": "integer", "minimum": 0}},
    description="The length of each answer, in characters or words.",
)
async def answer_lengths(answers: list[str], unit: str = "characters") -> list[int]:
    """The length of each answer (an object schema: the keyword arguments)."""
    return [len(answer.split()) if unit == "words" else len(answer) for answer in answers]


@operator(
    input_schema={"type": "array", "items": {"type": "string"}, "minItems": 1},
    output_schema={
        "type": "object",
        "properties": {"count": {"type": "integer"}, "distinct": {"type": "integer"}},
        "required": ["count", "distinct"],
    },
    description="How many answers, and how many distinct ones.",
)
async def count_answers(answers: list[str]) -> dict[str, int]:
    """Count the answers (an array schema: the list itself)."""
    return {"count": len(answers), "distinct": len(set(answers))}


network = NoN.from_operators(
    [
        Node("generate") * 3,
        [Node(longest_answer), Node(answer_lengths, unit="words"), Node(count_answers)],
    ],
    name="aggregators",
)
"""Three answers, then three aggregators in parallel, each given the list of three."""

SAMPLE = "Suggest a name for a bakery that also sells books."


async def main(text: str = SAMPLE) -> None:
    result = await network.forward(text)
    report(result)
    longest, lengths, counted = result.output
    print(f"longest answer: {len(longest)} characters")
    print(f"answer lengths in words: {lengths}")
    print(f"count: {counted['count']} answers, {counted['distinct']} distinct")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or SAMPLE))
