"""Lenient reading of a prose answer to a closed question (`classify`, `route`).

A provider without structured output may answer "Category: question. The user asks
how to fix a bug." instead of the JSON it was asked for. Such an answer is usable
when it names its choice unambiguously: after a label (`category:`, `answer:`...),
alone on its first line, or as the only allowed name it mentions. The confidence
and reasoning it states are kept; a prose answer that names no single choice is
left to the strict parser, which rejects it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from nons.operators import _prompts as p

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "CHOICE_LABELS",
    "choice_in_prose",
    "choose_leniently",
    "confidence_in_prose",
    "prose_answer",
    "reasoning_in_prose",
)

CHOICE_LABELS: tuple[str, ...] = (
    "category",
    "classification",
    "class",
    "label",
    "selected path",
    "selected_path",
    "path",
    "route",
    "choice",
    "answer",
)
"""Labels that introduce the choice in a prose answer (`**Category:** bug`)."""

_REASONING_CHARS = 500
"""Longest reasoning kept from a prose answer."""

_LABELLED = re.compile(
    r"^[\s>*_#-]*(?P<label>[A-Za-z_ ]{3,20}?)[\s*_]*[:=-][\s*_]*(?P<value>[^\n]+)$",
    re.MULTILINE,
)
_CONFIDENCE = re.compile(
    r"confiden(?:ce|t)\b[^0-9\n]{0,20}(?P<number>\d+(?:\.\d+)?)\s*(?P<percent>%)?",
    re.IGNORECASE,
)
_PERCENT_SURE = re.compile(
    r"(?P<number>\d+(?:\.\d+)?)\s*(?P<percent>%)\s*(?:confiden|sure|certain)", re.IGNORECASE
)
_REASONING = re.compile(
    r"^[\s>*_#-]*(?:reasoning|reasons?|rationale|why)[\s*_]*[:=-][\s*_]*(?P<value>.+)",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


def choice_in_prose(
    text: str, choices: Sequence[str], labels: Sequence[str] = CHOICE_LABELS
) -> str | None:
    """The one choice a prose answer names, or `None` when it names none or several.

    Tried in order: the value after a choice label, the first line on its own, then
    the only allowed name mentioned anywhere in the text.
    """
    wanted = {label.casefold() for label in labels}
    for match in _LABELLED.finditer(text):
        if match["label"].strip().casefold() in wanted:
            value = match["value"]
            choice = _leading_choice(value, choices) or p.match_choice(value, choices)
            if choice is not None:
                return choice
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    exact = _exact_choice(first_line, choices)
    if exact is not None:
        return exact
    return p.match_choice(text, choices)


def confidence_in_prose(text: str) -> float | None:
    """A stated confidence ("confidence: 0.8", "90% confident"), as a number in [0, 1]."""
    match = _CONFIDENCE.search(text) or _PERCENT_SURE.search(text)
    if match is None:
        return None
    if match["percent"]:
        return p.as_confidence(match["number"] + "%")
    # A bare number is a confidence only as a fraction: "confident, for 2 reasons" is not.
    number = float(match["number"])
    return number if number <= 1.0 else None


def reasoning_in_prose(text: str, choice: str) -> str | None:
    """The reasons a prose answer gives: a labelled reasoning, or the prose itself.

    `None` when the answer is only the choice, which gives no reasons.
    """
    labelled = _REASONING.search(text)
    reasoning = labelled["value"] if labelled else text
    reasoning = " ".join(reasoning.split())
    if _exact_choice(reasoning, [choice]) is not None or not reasoning:
        return None
    if len(reasoning) > _REASONING_CHARS:
        reasoning = reasoning[: _REASONING_CHARS - 3] + "..."
    return reasoning


def prose_answer(
    text: str, key: str, confidence_key: str, choices: Sequence[str]
) -> dict[str, object] | None:
    """The JSON object a prose answer stands for, or `None` when it names no one choice."""
    choice = choice_in_prose(text, choices)
    if choice is None:
        return None
    data: dict[str, object] = {key: choice}
    confidence = confidence_in_prose(text)
    if confidence is not None:
        data[confidence_key] = confidence
    reasoning = reasoning_in_prose(text, choice)
    if reasoning is not None:
        data["reasoning"] = reasoning
    return data


def choose_leniently(
    reply: p.Reply, key: str, confidence_key: str, allowed: list[str]
) -> tuple[str, float, str]:
    """`_prompts.choose`, after reading a real model's prose answer as its JSON.

    Raises:
        OperatorValidationError: the reply names no single allowed choice.
    """
    if reply.data is None and not reply.is_mock:
        reply = replace(reply, data=prose_answer(reply.text, key, confidence_key, allowed))
    return p.choose(reply, key, confidence_key, allowed)


def _leading_choice(text: str, choices: Sequence[str]) -> str | None:
    """The longest choice `text` starts with, as a whole word ("question. It asks...")."""
    normalised = _normalise(text)
    for choice in sorted(choices, key=len, reverse=True):
        name = _normalise(choice)
        if name and re.match(rf"{re.escape(name)}(?!\w)", normalised):
            return choice
    return None


def _exact_choice(text: str, choices: Sequence[str]) -> str | None:
    normalised = _normalise(text)
    return next((choice for choice in choices if _normalise(choice) == normalised), None)


def _normalise(text: str) -> str:
    return " ".join(text.strip("\"'`*.,;:!()[]{} \t\n").casefold().split())
