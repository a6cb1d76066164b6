"""A small network for the `nons ui` tests: its outputs repeat the input verbatim, and one
node fails on demand, so a test controls what the page must show (untrusted markup, an
error type). `nons up tests.support.ui_network:network` serves it.
"""

from __future__ import annotations

import asyncio

from nons import Node, NoN
from nons.operators.registry import operator

__all__ = ("FAIL_WORD", "NETWORK_NAME", "SLOW_S", "SLOW_WORD", "network")

NETWORK_NAME = "ui_demo"
FAIL_WORD = "boom"
"""An input containing this word makes the `guard` node fail."""
SLOW_WORD = "slowly"
SLOW_S = 2.0
"""An input containing `SLOW_WORD` keeps the `guard` node running this long."""


@operator(description="Returns its text unchanged (model text is untrusted: it may be markup).")
async def parrot(text: object) -> str:
    return str(text)


@operator(description="Returns its text; fails on the fail word, dawdles on the slow word.")
async def guard(text: object) -> str:
    if SLOW_WORD in str(text):
        await asyncio.sleep(SLOW_S)
    if FAIL_WORD in str(text):
        raise ValueError(f"the input contains {FAIL_WORD!r}")
    return str(text)


network = NoN.from_operators(
    [Node("parrot"), [Node("parrot"), Node("guard")], Node("parrot")],
    name=NETWORK_NAME,
)
"""Three layers: parrot -> [parrot, guard] -> parrot."""
