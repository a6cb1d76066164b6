"""A custom operator module: importable, so every process resolves the operator by path.

A network spec names the operator (`top_keywords`) and this module
(`examples.word_tools`); an actor in another process imports the module to run it.
"""

from __future__ import annotations

import re
from collections import Counter

from nons import operator

__all__ = ("top_keywords",)

_STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its my of on or so that the "
    "this to was we were with you your me since every".split()
)


@operator(
    input_schema={
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20},
        },
        "required": ["text"],
    },
    output_schema={
        "type": "object",
        "properties": {
            "keywords": {"type": "array", "items": {"type": "string"}},
            "word_count": {"type": "integer", "minimum": 0},
        },
        "required": ["keywords", "word_count"],
    },
    description="The most frequent content words of a text, most frequent first.",
)
async def top_keywords(text: str, limit: int = 5) -> dict[str, object]:
    """The most frequent content words (ties in order of first use); no model call."""
    words = re.findall(r"[a-z][a-z'-]+", text.lower())
    counts = Counter(word for word in words if word not in _STOP_WORDS)
    return {"keywords": [word for word, _ in counts.most_common(limit)], "word_count": len(words)}
