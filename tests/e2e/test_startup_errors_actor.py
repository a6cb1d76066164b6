"""`nons actor` of a network that caches in JetStream says in one line that JetStream is missing."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from nons.runtime.server import EmbeddedServer
from tests.support.processes import REPO_ROOT, nons_env

if TYPE_CHECKING:
    from pathlib import Path

_SPEC = """\
name: shared_cache
config:
  cache:
    backend: jetstream
layers:
  - nodes:
      - node_id: clean
        operator: transform
"""


def test_an_actor_whose_cache_needs_jetstream_is_one_line_naming_it_the_url_and_the_fix(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "shared_cache.yaml"
    spec.write_text(_SPEC)
    with EmbeddedServer(jetstream=False) as server:
        result = subprocess.run(
            [sys.executable, "-m", "nons", "--nats-url", server.url, "actor", str(spec)],
            capture_output=True,
            text=True,
            env=nons_env(),
            cwd=REPO_ROOT,
            timeout=60,
            check=False,
        )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("nons actor: JetStream is not enabled"), line
    assert server.url in line
    assert "jetstream cache of shared_cache" in line
    assert "nats-server -js" in line
