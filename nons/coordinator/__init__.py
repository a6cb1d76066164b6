"""The coordinator: serves `nons.exec.<network>`, runs executions layer by layer.

`execution` walks the layers and composes `_node_calls.NodeCaller` (attempts,
retries, fallback, routers), `_attempt.Attempts` (one call through breaker, NATS
and span), `routing` (pure route decisions), `subnetworks`, `budget` and
`model_stats`; `_state` holds the serialisable execution state.

May import `nons.core`, `nons.resilience`, `nons.runtime` (transport),
`nons.observability` and the pure price table `nons.providers.pricing`; never the
actors, the client, the CLI or a provider client (a coordinator holds no credentials).
"""
