"""Deterministic ensemble operators: pack, rank, vote on and pick a parallel layer's outputs.

They make no model call, so the same input always gives the same output: candidate
ids are positional (`c0`, `c1`...), ties keep input order, and votes compare values
in a canonical form (trimmed, case-folded text; canonical JSON for objects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from nons.operators._builtin import operator

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("extract_winners", "majority", "pack_candidates", "select_by_id")

SCORE_KEYS: tuple[str, ...] = ("score", "confidence", "routing_confidence")
"""Keys of an output object read, in order, as its candidate score."""

VOTE_KEYS: tuple[str, ...] = ("category", "selected_path", "is_valid")
"""Keys of an output object voted on instead of the whole object (classify, route...)."""

_CANDIDATE: dict[str, object] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "content": {},
        "score": {"type": ["number", "null"]},
    },
    "required": ["id", "content", "score"],
}
_CANDIDATES: dict[str, object] = {"type": "array", "items": _CANDIDATE}


@operator(
    input_schema={
        "type": "object",
        "properties": {"input_data": {}},
        "required": ["input_data"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {"candidates": _CANDIDATES, "total_count": {"type": "integer"}},
        "required": ["candidates", "total_count"],
    },
    description="Number a parallel layer's outputs as scored candidates.",
)
async def pack_candidates(input_data: Any) -> dict[str, Any]:
    """Number a parallel layer's outputs as scored candidates.

    Accepts a list of outputs, an object with `candidates` (already packed) or
    `results`, or a single output.
    """
    candidates = _candidates(input_data)
    return {"candidates": candidates, "total_count": len(candidates)}


@operator(
    input_schema={
        "type": "object",
        "properties": {
            "input_data": {},
            "strategy": {"enum": ["top_k", "threshold"]},
            "k": {"type": "integer", "minimum": 1},
            "threshold": {"type": "number"},
        },
        "required": ["input_data"],
        "additionalProperties": False,
    },
    output_schema=_CANDIDATES,
    description="Keep the best candidates: the top k by score, or those above a threshold.",
)
async def extract_winners(
    input_data: Any,
    strategy: Literal["top_k", "threshold"] = "top_k",
    k: int = 1,
    threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """Keep the best candidates: the top k by score, or those above a threshold.

    Unscored candidates rank after scored ones and never pass a threshold; ties keep
    their input order.
    """
    candidates = _candidates(input_data)
    if strategy == "threshold":
        return [c for c in candidates if c["score"] is not None and c["score"] >= threshold]
    ranked = sorted(candidates, key=lambda c: (c["score"] is None, -(c["score"] or 0.0)))
    return ranked[:k]


@operator(
    input_schema={
        "type": "object",
        "properties": {
            "input_data": {},
            "strategy": {"enum": ["simple", "weighted"]},
            "min_consensus": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["input_data"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {
            "result": {},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "vote_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "consensus_met": {"type": "boolean"},
        },
        "required": ["result", "confidence", "vote_counts", "consensus_met"],
    },
    description="Vote on a parallel layer's outputs; the winner when consensus is met.",
)
async def majority(
    input_data: Any,
    strategy: Literal["simple", "weighted"] = "simple",
    min_consensus: float = 0.5,
) -> dict[str, Any]:
    """Vote on a parallel layer's outputs; the winner when consensus is met.

    Texts vote after trimming and case-folding; classify and route outputs vote on
    their category or path; other values on their canonical JSON. `weighted` counts
    each vote by its confidence (or score). `confidence` is the winner's share of the
    votes; consensus needs that share to reach `min_consensus` and no tie for first.
    `result` is the winner's first value (its label for classify and route outputs),
    `None` without consensus.
    """
    groups: dict[str, _Group] = {}
    for candidate in _candidates(input_data):
        value = candidate["content"]
        key, label, result = _vote(value)
        group = groups.setdefault(key, _Group(label=label, result=result))
        group.count += 1
        group.weight += 1.0 if strategy == "simple" else _weight(value)
    counts = {group.label: group.count for group in groups.values()}
    total = sum(group.weight for group in groups.values())
    if total <= 0.0:
        return {"result": None, "confidence": 0.0, "vote_counts": counts, "consensus_met": False}
    best = max(group.weight for group in groups.values())
    leaders = [group for group in groups.values() if group.weight == best]
    confidence = round(best / total, 6)
    met = len(leaders) == 1 and confidence >= min_consensus
    return {
        "result": leaders[0].result if met else None,
        "confidence": confidence,
        "vote_counts": counts,
        "consensus_met": met,
    }


@operator(
    input_schema={
        "type": "object",
        "properties": {
            "input_data": {},
            "target_ids": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
        },
        "required": ["input_data", "target_ids"],
        "additionalProperties": False,
    },
    output_schema=_CANDIDATES,
    description="Pick candidates by id, in candidate order.",
)
async def select_by_id(input_data: Any, target_ids: str | Sequence[str]) -> list[dict[str, Any]]:
    """Pick candidates by id, in candidate order."""
    wanted = {target_ids} if isinstance(target_ids, str) else set(target_ids)
    return [c for c in _candidates(input_data) if c["id"] in wanted]


@dataclass(slots=True)
class _Group:
    label: str
    result: Any
    count: int = 0
    weight: float = 0.0


def _candidates(input_data: Any) -> list[dict[str, Any]]:
    """Normalise any accepted input to candidates with ids `c0`, `c1`... and scores."""
    if isinstance(input_data, dict) and isinstance(input_data.get("candidates"), list):
        items = input_data["candidates"]
        if all(_is_candidate(item) for item in items):
            return [
                {"id": str(item["id"]), "content": item["content"], "score": _score(item)}
                for item in items
            ]
    elif isinstance(input_data, dict) and isinstance(input_data.get("results"), list):
        items = input_data["results"]
    elif isinstance(input_data, list):
        items = input_data
    else:
        items = [input_data]
    return [
        {"id": f"c{index}", "content": item, "score": _score(item)}
        for index, item in enumerate(items)
    ]


def _is_candidate(item: object) -> bool:
    return isinstance(item, dict) and "id" in item and "content" in item


def _score(item: object) -> float | None:
    if not isinstance(item, dict):
        return None
    for key in SCORE_KEYS:
        value = item.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _vote(value: object) -> tuple[str, str, Any]:
    """The key a value votes under, its label in `vote_counts`, and its result value."""
    if isinstance(value, dict):
        for name in VOTE_KEYS:
            if name in value:
                label = value[name] if isinstance(value[name], str) else _canonical(value[name])
                return _text_key(label), label.strip(), value[name]
    if isinstance(value, str):
        return _text_key(value), value.strip(), value.strip()
    canonical = _canonical(value)
    return "json:" + canonical, canonical, value


def _text_key(text: str) -> str:
    return "text:" + " ".join(text.split()).casefold()


def _weight(value: object) -> float:
    score = _score(value)
    return score if score is not None and score >= 0.0 else 1.0


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
