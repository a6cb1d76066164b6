"""What callers use: the NATS `Client`, batches and streams, the embedded runtime.

`_client` talks to deployed coordinators over `nons.exec.<network>`; `batch` bounds
many executions; `local` (the default `nons.core.executor.Runtime`) starts an
embedded nats-server with an in-process coordinator and actor host for `forward()`.

May import `nons.core`, `nons.runtime` (transport), `nons.observability`, and, in
`local` only, the coordinator and the actors it composes; nothing imports the client
except the CLI and the top-level `nons.connect`.
"""

from nons.client._client import Client, ExecutionInfo, connect

__all__ = ("Client", "ExecutionInfo", "connect")
