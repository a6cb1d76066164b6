"""Prompt templates of the built-in LLM operators, and tolerant parsing of model replies.

Every system prompt states the operator's role and the exact reply format, because a
node's output feeds the next layer unchanged: preambles and commentary would leak
into it. Parsing accepts what models actually send (code fences, surrounding prose).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nons.core.errors import OperatorValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = (
    "MOCK_CONFIDENCE",
    "Reply",
    "as_bool",
    "as_text",
    "choose",
    "field_of",
    "format_error",
    "listed_categories",
    "CLASSIFY_SYSTEM",
    "COMPARE_SYSTEM",
    "CONDENSE_SYSTEM",
    "DEPTH_GUIDANCE",
    "EXPAND_SYSTEM",
    "EXTRACT_SYSTEM",
    "GENERATE_SYSTEM",
    "ROUTE_SYSTEM",
    "STRICTNESS_GUIDANCE",
    "SYNTHESIZE_SYSTEM",
    "TRANSFORM_SYSTEM",
    "VALIDATE_SYSTEM",
    "as_confidence",
    "as_string_list",
    "match_choice",
    "parse_json_object",
    "render",
    "render_sources",
    "sections",
)

_NO_PREAMBLE = "Reply with the result only: no preamble, no commentary, no code fences."
_JSON_ONLY = "Reply with a single JSON object and nothing else (no prose, no code fences)."

TRANSFORM_SYSTEM = (
    "You are the transform step of a pipeline of language-model operators. You rewrite "
    "the given content according to one transformation instruction. Preserve every fact, "
    "name and figure unless the instruction asks otherwise, and never add information. "
    + _NO_PREAMBLE
)
"""System prompt of `transform`."""

GENERATE_SYSTEM = (
    "You are the generate step of a pipeline of language-model operators. You write new "
    "content that fulfils the specification. Obey every constraint exactly, follow the "
    "style guide when one is given, and prefer accurate, specific content over filler. "
    + _NO_PREAMBLE
)
"""System prompt of `generate`."""

CLASSIFY_SYSTEM = (
    "You are a precise classifier. Assign the content to exactly one of the allowed "
    "categories, spelled exactly as listed. " + _JSON_ONLY + ' Shape: {"category": '
    '"<one allowed category>", "confidence": <number from 0 to 1>, "reasoning": "<one or '
    'two sentences citing the decisive evidence>"}'
)
"""System prompt of `classify`."""

EXTRACT_SYSTEM = (
    "You extract information from content. Use only what the content states; never "
    "guess or invent. " + _JSON_ONLY + " When fields are listed, the object has exactly "
    "those keys, with null for a field the content does not give. Otherwise choose short "
    "snake_case keys, one per extracted item."
)
"""System prompt of `extract`."""

CONDENSE_SYSTEM = (
    "You condense content. Keep the key facts, figures, names, decisions and conclusions; "
    "drop repetition, examples and hedging. Never add information or change meaning. "
    + _NO_PREAMBLE
)
"""System prompt of `condense`."""

EXPAND_SYSTEM = (
    "You expand content for a reader who wants more depth: add explanation, context, "
    "implications and concrete examples a careful expert would add. Stay accurate, and "
    "state uncertainty instead of inventing specifics. " + _NO_PREAMBLE
)
"""System prompt of `expand`."""

COMPARE_SYSTEM = (
    "You compare pieces of content along the requested dimensions. " + _JSON_ONLY + " "
    'Shape: {"differences": ["<short statement>", ...], "similarities": ["<short '
    'statement>", ...], "conclusion": "<one to three sentences: which is stronger or how '
    'they relate, and why>"}'
)
"""System prompt of `compare`."""

VALIDATE_SYSTEM = (
    "You are a careful reviewer. Judge whether the content meets the validation "
    "criteria at the requested strictness. " + _JSON_ONLY + ' Shape: {"is_valid": '
    'true or false, "validation_reasoning": "<the specific problems found, or why it '
    'passes>", "confidence": <number from 0 to 1>}'
)
"""System prompt of `validate`."""

ROUTE_SYSTEM = (
    "You are a router. Pick the one available path best suited to handle the content, "
    "spelled exactly as listed. " + _JSON_ONLY + ' Shape: {"selected_path": "<one '
    'available path>", "routing_confidence": <number from 0 to 1>, "reasoning": "<one '
    'sentence>"}'
)
"""System prompt of `route`."""

SYNTHESIZE_SYSTEM = (
    "You synthesize several sources into one coherent, self-contained answer. State "
    "points the sources agree on once, keep the most specific and best-supported "
    "details, and resolve contradictions (or say plainly which claim is uncertain). Do "
    "not mention the sources themselves unless asked. " + _NO_PREAMBLE
)
"""System prompt of `synthesize`."""

DEPTH_GUIDANCE: dict[int, str] = {
    1: "Add a little detail: about one and a half times the original length.",
    2: "Add moderate detail: about twice the original length.",
    3: "Add substantial detail, with examples: about three times the original length.",
    4: "Give a thorough treatment with examples and implications.",
    5: "Give an exhaustive, expert-level treatment covering edge cases and nuances.",
}
"""What each `expand` depth level asks for."""

STRICTNESS_GUIDANCE: dict[str, str] = {
    "strict": "strict: any error, gap or unsupported claim makes the content invalid.",
    "moderate": "moderate: only material errors or omissions make the content invalid.",
    "lenient": "lenient: the content is invalid only when it is fundamentally wrong.",
}
"""What each `validate` strictness level means to the reviewer."""

MOCK_CONFIDENCE = 0.5
"""Confidence reported for a mock answer: the mock knows nothing."""

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_EDGE_PUNCTUATION = "\"'`*.,;:!()[]{} \t\n"


def render(value: object) -> str:
    """Text of a content value for a prompt: strings as they are, JSON otherwise."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def render_sources(values: Sequence[object], label: str = "Source") -> str:
    """Several content values as numbered, clearly separated blocks."""
    return "\n\n".join(
        f"--- {label} {index} ---\n{render(value)}" for index, value in enumerate(values, 1)
    )


def sections(*parts: tuple[str, object]) -> str:
    """A prompt of titled sections, skipping those whose value is `None` or empty."""
    blocks = [
        f"{title}:\n{render(value)}" for title, value in parts if value is not None and value != ""
    ]
    return "\n\n".join(blocks)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply, tolerating code fences and surrounding prose."""
    candidates = [text.strip(), *(match.strip() for match in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def match_choice(text: str, choices: Sequence[str]) -> str | None:
    """The single choice a reply names: exactly, or as the only choice mentioned in it."""
    normalised = _normalise(text)
    for choice in choices:
        if _normalise(choice) == normalised:
            return choice
    mentioned = [
        choice
        for choice in choices
        if _normalise(choice)
        and re.search(rf"(?<!\w){re.escape(_normalise(choice))}(?!\w)", normalised)
    ]
    # "very positive" also mentions "positive": keep only the longest overlapping names.
    distinct = [
        choice
        for choice in mentioned
        if not any(
            other != choice and _normalise(choice) in _normalise(other) for other in mentioned
        )
    ]
    return distinct[0] if len(distinct) == 1 else None


def as_confidence(value: object) -> float | None:
    """A confidence in [0, 1] from a number, a numeric string or a percentage."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().rstrip("%")
        try:
            number = float(text)
        except ValueError:
            return None
        if value.strip().endswith("%"):
            number /= 100.0
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if 1.0 < number <= 100.0:
        number /= 100.0
    return number if 0.0 <= number <= 1.0 else None


def as_string_list(value: object) -> list[str] | None:
    """A list of strings from a list (items stringified) or a single string."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [item if isinstance(item, str) else render(item) for item in value]
    return None


@dataclass(frozen=True, slots=True)
class Reply:
    """A model reply as the built-in operators parse it."""

    operator: str
    """The operator that asked."""
    text: str
    """The reply, stripped."""
    is_mock: bool
    """True when the mock provider answered (only then are gaps filled)."""
    data: dict[str, Any] | None
    """The first JSON object in the reply, when one was asked for and found."""


def choose(
    reply: Reply, key: str, confidence_key: str, allowed: list[str]
) -> tuple[str, float, str]:
    """The choice, confidence and reasoning of a classify- or route-style reply."""
    data = reply.data
    choice: str | None = None
    confidence: float | None = None
    reasoning: object = None
    named = next((name for name in (key, "choice") if data and name in data), None)
    if data is not None and named is not None:
        key = named
        choice = match_choice(str(data[key]), allowed)
        confidence = as_confidence(data.get(confidence_key))
        reasoning = data.get("reasoning")
        if choice is None and not reply.is_mock:
            raise OperatorValidationError(
                f"{reply.operator} output: $.{key}: {str(data[key])[:80]!r} is not one of "
                f"{allowed} (enum)",
                operator=reply.operator,
                direction="output",
                field=f"$.{key}",
                rule="enum",
            )
    if choice is None and (data is None or reply.is_mock):
        choice = match_choice(reply.text, allowed)
    if choice is None:
        if not reply.is_mock:
            raise format_error(reply.operator, reply.text, f"one of {allowed}")
        choice = allowed[0]
    if reply.is_mock:
        marked = f"[mock] {choice!r} was picked by the offline mock provider, not a model"
        return choice, MOCK_CONFIDENCE if confidence is None else confidence, marked
    if not isinstance(reasoning, str):
        reasoning = "the model named the choice without giving reasons"
    return choice, MOCK_CONFIDENCE if confidence is None else confidence, reasoning


def field_of(
    reply: Reply, key: str, coerce: Callable[[object], object | None], mock_default: object
) -> Any:
    """One key of a JSON reply, coerced; a marked default for a mock, an error otherwise."""
    value = coerce(reply.data.get(key)) if reply.data is not None else None
    if value is not None:
        return value
    if reply.is_mock:
        return mock_default
    if reply.data is None:
        raise format_error(reply.operator, reply.text, "a JSON object")
    raise OperatorValidationError(
        f"{reply.operator} output: $.{key}: the model's JSON lacks a usable {key!r} (format)",
        operator=reply.operator,
        direction="output",
        field=f"$.{key}",
        rule="format",
    )


def format_error(name: str, text: str, expected: str) -> OperatorValidationError:
    preview = text[:120] + ("..." if len(text) > 120 else "")
    return OperatorValidationError(
        f"{name} output: $: expected {expected} from the model, got {preview!r} (format)",
        operator=name,
        direction="output",
        field="$",
        rule="format",
    )


def as_text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in {"true", "valid", "yes"}:
        return True
    if isinstance(value, str) and value.strip().casefold() in {"false", "invalid", "no"}:
        return False
    return None


def listed_categories(schema: str | None) -> list[str]:
    """Categories listed in a textual scheme such as `"sentiment: positive, negative"`."""
    if not schema:
        return []
    listed = schema.split(":", 1)[-1]
    for separator in (",", "|", "/"):
        names = [name.strip(" .'\"") for name in listed.split(separator)]
        names = [name for name in names if name]
        if 2 <= len(names) <= 20 and all(len(name.split()) <= 3 for name in names):
            return list(dict.fromkeys(names))
    return []


def _normalise(text: str) -> str:
    return " ".join(text.strip(_EDGE_PUNCTUATION).casefold().split())
