"""The docs' custom-operator network: a validated `@operator` used like a built-in.

`top_keywords` lives in `examples.word_tools`, an importable module, so the network's
spec can name it and another process (an actor started with the spec file) can run
it. This example also writes the spec to a file and loads it back.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import report
from examples.word_tools import top_keywords
from nons import Node, NoN

network = NoN.from_operators(
    [
        Node(top_keywords, limit=3),
        Node("expand", expansion_topic="why these keywords matter to the customer"),
    ],
    name="keywords",
)
"""Keywords, then an explanation: `nons up examples.custom_operator:network` serves it."""

SAMPLE = "The invoice export fails, the invoice totals are wrong and the export is slow."


async def main(text: str = SAMPLE) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "keywords.yaml"
        network.save(path)
        loaded = NoN.load(path)
    assert loaded.fingerprint == network.fingerprint, "spec round trip changed the network"
    print(f"spec round trip ok: {loaded.name} fingerprint {loaded.fingerprint}")
    result = await loaded.forward(text)
    report(result)


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or SAMPLE))
