"""The ten built-in LLM operators of NoN, each one model call through the node's context.

Every parameter beyond the first has a default, so each operator runs inside a network
on a single input; the rest is bound on the node (`categories`, `fields`...). Content
parameters accept any JSON value, because layers pass lists (parallel outputs) and
objects (`extract` results) along. The operators that answer with a JSON object ask
for it as structured output, parse a text answer leniently and ask once more when it
is unusable (`_structured`); only a mock completion gets missing pieces filled, and
visibly marked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from nons.core.errors import OperatorValidationError
from nons.operators import _prompts as p
from nons.operators import _structured as s
from nons.operators._builtin import operator
from nons.operators._lenient import choose_leniently

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nons.core.types import Content

__all__ = (
    "DEFAULT_CATEGORIES",
    "DEFAULT_PATHS",
    "classify",
    "compare",
    "condense",
    "expand",
    "extract",
    "generate",
    "route",
    "synthesize",
    "transform",
    "validate",
)

DEFAULT_CATEGORIES: tuple[str, ...] = ("positive", "negative", "neutral")
"""Categories of `classify` when neither `categories` nor a listed schema is given."""

DEFAULT_PATHS: tuple[str, ...] = ("simple", "complex")
"""Paths of `route` when the node binds no `available_paths`."""

_ANY: dict[str, object] = {}
_TEXT: dict[str, object] = {"type": ["string", "null"]}
_NAMES: dict[str, object] = {
    "type": ["array", "null"],
    "items": {"type": "string", "minLength": 1},
    "minItems": 1,
    "uniqueItems": True,
}
_UNIT: dict[str, object] = {"type": "number", "minimum": 0, "maximum": 1}
_TEXT_OUTPUT: dict[str, object] = {"type": "string", "minLength": 1}
_STRING_LIST: dict[str, object] = {"type": "array", "items": {"type": "string"}}


def _inputs(required: str, **properties: dict[str, object]) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {required: _ANY, **properties},
        "required": [required],
        "additionalProperties": False,
    }


def _outputs(**properties: dict[str, object]) -> dict[str, object]:
    return {"type": "object", "properties": properties, "required": list(properties)}


_COMPARE_OUTPUT = _outputs(
    differences=_STRING_LIST, similarities=_STRING_LIST, conclusion={"type": "string"}
)
_VALIDATE_OUTPUT = _outputs(
    is_valid={"type": "boolean"}, validation_reasoning={"type": "string"}, confidence=_UNIT
)


@operator(
    input_schema=_inputs("content", transformation_type={"type": "string", "minLength": 1}),
    output_schema=_TEXT_OUTPUT,
    description="Rewrite content according to a transformation instruction.",
)
async def transform(content: Content, transformation_type: str = "clean up and normalise") -> str:
    """Rewrite content according to a transformation instruction."""
    prompt = p.sections(("Transformation", transformation_type), ("Content", content))
    return (await _ask("transform", p.TRANSFORM_SYSTEM, prompt)).text


@operator(
    input_schema=_inputs("generation_specification", constraints=_TEXT, style_guide=_TEXT),
    output_schema=_TEXT_OUTPUT,
    description="Write new content from a specification, constraints and a style guide.",
)
async def generate(
    generation_specification: Content,
    constraints: str | None = None,
    style_guide: str | None = None,
) -> str:
    """Write new content from a specification, constraints and a style guide."""
    prompt = p.sections(
        ("Specification", generation_specification),
        ("Constraints", constraints),
        ("Style guide", style_guide),
    )
    return (await _ask("generate", p.GENERATE_SYSTEM, prompt)).text


@operator(
    input_schema=_inputs(
        "content",
        classification_schema=_TEXT,
        categories=_NAMES,
        confidence_threshold={"type": ["number", "null"], "minimum": 0, "maximum": 1},
    ),
    output_schema={
        "type": "object",
        "properties": {
            "category": {"type": "string"},
            "confidence": _UNIT,
            "reasoning": {"type": "string"},
            "meets_threshold": {"type": "boolean"},
        },
        "required": ["category", "confidence", "reasoning"],
    },
    description="Assign content to exactly one category, with confidence and reasoning.",
)
async def classify(
    content: Content,
    classification_schema: str | None = None,
    categories: list[str] | None = None,
    confidence_threshold: float | None = None,
) -> dict[str, Any]:
    """Assign content to exactly one category, with confidence and reasoning."""
    allowed = list(categories or p.listed_categories(classification_schema) or DEFAULT_CATEGORIES)
    prompt = p.sections(
        ("Classification scheme", classification_schema),
        ("Allowed categories", "\n".join(f"- {name}" for name in allowed)),
        ("Content", content),
    )

    def parse(reply: p.Reply) -> dict[str, Any]:
        category, confidence, reasoning = choose_leniently(reply, "category", "confidence", allowed)
        result: dict[str, Any] = {
            "category": category,
            "confidence": confidence,
            "reasoning": reasoning,
        }
        if confidence_threshold is not None:
            result["meets_threshold"] = confidence >= confidence_threshold
        return result

    schema = s.choice_schema("category", "confidence", allowed)
    return await s.ask_structured(
        "classify", p.CLASSIFY_SYSTEM, prompt, schema, parse, choices=allowed
    )


@operator(
    input_schema=_inputs(
        "content",
        extraction_criteria={"type": "string", "minLength": 1},
        fields=_NAMES,
        output_format=_TEXT,
    ),
    output_schema={"type": "object"},
    description="Extract information as a JSON object (exactly the given fields when set).",
)
async def extract(
    content: Content,
    extraction_criteria: str = "key facts",
    fields: list[str] | None = None,
    output_format: str | None = None,
) -> dict[str, Any]:
    """Extract information as a JSON object (exactly the given fields when set)."""
    prompt = p.sections(
        ("Extract", extraction_criteria),
        ("Fields (exactly these keys)", ", ".join(fields) if fields else None),
        ("Format of the values", output_format),
        ("Content", content),
    )

    def parse(reply: p.Reply) -> dict[str, Any]:
        data = reply.data
        if data is None:
            if not reply.is_mock:
                raise p.format_error("extract", reply.text, "a JSON object")
            data = {} if fields else {"extracted": reply.text}
        if not fields:
            return data
        if reply.is_mock:
            return {name: data.get(name, f"[mock] {name}") for name in fields}
        return {name: data.get(name) for name in fields}

    schema = s.fields_schema(fields)
    return await s.ask_structured("extract", p.EXTRACT_SYSTEM, prompt, schema, parse)


@operator(
    input_schema=_inputs(
        "content",
        target_length={"type": ["integer", "null"], "minimum": 1},
        preservation_priority=_TEXT,
    ),
    output_schema=_TEXT_OUTPUT,
    description="Shorten content while keeping what matters most.",
)
async def condense(
    content: Content, target_length: int | None = None, preservation_priority: str | None = None
) -> str:
    """Shorten content while keeping what matters most."""
    prompt = p.sections(
        ("Target length", f"at most {target_length} words" if target_length else None),
        ("Preserve first", preservation_priority),
        ("Content", content),
    )
    return (await _ask("condense", p.CONDENSE_SYSTEM, prompt)).text


@operator(
    input_schema=_inputs(
        "content",
        expansion_topic=_TEXT,
        depth_level={"type": "integer", "minimum": 1, "maximum": 5},
    ),
    output_schema=_TEXT_OUTPUT,
    description="Elaborate content with explanation, context and examples.",
)
async def expand(content: Content, expansion_topic: str | None = None, depth_level: int = 2) -> str:
    """Elaborate content with explanation, context and examples."""
    prompt = p.sections(
        ("Focus the expansion on", expansion_topic),
        ("Depth", p.DEPTH_GUIDANCE[min(max(depth_level, 1), 5)]),
        ("Content", content),
    )
    return (await _ask("expand", p.EXPAND_SYSTEM, prompt)).text


@operator(
    input_schema=_inputs("content_a", content_b=_ANY, comparison_dimensions=_TEXT),
    output_schema=_COMPARE_OUTPUT,
    description="Compare two contents (or a parallel layer's outputs): differences, "
    "similarities and a conclusion.",
)
async def compare(
    content_a: Content, content_b: Content = None, comparison_dimensions: str | None = None
) -> dict[str, Any]:
    """Compare two contents (or a parallel layer's outputs)."""
    if content_b is not None:
        items = [content_a, content_b]
    elif isinstance(content_a, list) and len(content_a) >= 2:
        items = list(content_a)
    else:
        raise OperatorValidationError(
            "compare input: $.content_b: give content_b, or content_a as a list of two or "
            "more items (a parallel layer's outputs) (required)",
            operator="compare",
            direction="input",
            field="$.content_b",
            rule="required",
        )
    prompt = p.sections(
        ("Compare along", comparison_dimensions or "substance, accuracy, completeness, clarity"),
        ("Items", p.render_sources(items, "Item")),
    )

    def parse(reply: p.Reply) -> dict[str, Any]:
        unseen = "[mock] not compared"
        return {
            "differences": p.field_of(reply, "differences", p.as_string_list, [unseen]),
            "similarities": p.field_of(reply, "similarities", p.as_string_list, [unseen]),
            "conclusion": p.field_of(
                reply, "conclusion", p.as_text, "[mock] no real comparison was made"
            ),
        }

    return await s.ask_structured("compare", p.COMPARE_SYSTEM, prompt, _COMPARE_OUTPUT, parse)


@operator(
    input_schema=_inputs(
        "content",
        validation_criteria={"type": "string", "minLength": 1},
        strictness_level={"enum": sorted(p.STRICTNESS_GUIDANCE)},
    ),
    output_schema=_VALIDATE_OUTPUT,
    description="Judge content against criteria at a strictness level.",
)
async def validate(
    content: Content,
    validation_criteria: str = "factual, clear and complete",
    strictness_level: Literal["strict", "moderate", "lenient"] = "moderate",
) -> dict[str, Any]:
    """Judge content against criteria at a strictness level."""
    prompt = p.sections(
        ("Criteria", validation_criteria),
        ("Strictness", p.STRICTNESS_GUIDANCE.get(strictness_level, strictness_level)),
        ("Content", content),
    )

    def parse(reply: p.Reply) -> dict[str, Any]:
        return {
            "is_valid": p.field_of(reply, "is_valid", p.as_bool, True),
            "validation_reasoning": p.field_of(
                reply, "validation_reasoning", p.as_text, "[mock] not validated by a real model"
            ),
            "confidence": p.field_of(reply, "confidence", p.as_confidence, p.MOCK_CONFIDENCE),
        }

    return await s.ask_structured("validate", p.VALIDATE_SYSTEM, prompt, _VALIDATE_OUTPUT, parse)


@operator(
    input_schema=_inputs(
        "content", available_paths={**_NAMES, "type": "array"}, routing_logic=_TEXT
    ),
    output_schema=_outputs(
        selected_path={"type": "string"}, routing_confidence=_UNIT, reasoning={"type": "string"}
    ),
    description="Pick the one available path best suited to the content.",
)
async def route(
    content: Content,
    available_paths: Sequence[str] = DEFAULT_PATHS,
    routing_logic: str | None = None,
) -> dict[str, Any]:
    """Pick the one available path best suited to the content."""
    paths = list(available_paths)
    prompt = p.sections(
        ("Routing logic", routing_logic),
        ("Available paths", "\n".join(f"- {name}" for name in paths)),
        ("Content", content),
    )

    def parse(reply: p.Reply) -> dict[str, Any]:
        selected, confidence, reasoning = choose_leniently(
            reply, "selected_path", "routing_confidence", paths
        )
        return {"selected_path": selected, "routing_confidence": confidence, "reasoning": reasoning}

    schema = s.choice_schema("selected_path", "routing_confidence", paths)
    return await s.ask_structured("route", p.ROUTE_SYSTEM, prompt, schema, parse, choices=paths)


@operator(
    input_schema=_inputs("original_content", new_content=_ANY, synthesis_focus=_TEXT),
    output_schema=_TEXT_OUTPUT,
    description="Merge several contents (e.g. a parallel layer's outputs) into one answer.",
)
async def synthesize(
    original_content: Content, new_content: Content = None, synthesis_focus: str | None = None
) -> str:
    """Merge several contents (e.g. a parallel layer's outputs) into one answer."""
    sources = list(original_content) if isinstance(original_content, list) else [original_content]
    if new_content is not None:
        sources.append(new_content)
    prompt = p.sections(("Focus", synthesis_focus), ("Sources", p.render_sources(sources)))
    return (await _ask("synthesize", p.SYNTHESIZE_SYSTEM, prompt)).text


async def _ask(name: str, system: str, prompt: str) -> p.Reply:
    return await s.ask(name, system, prompt)
